import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { parseAllDocuments } from 'yaml'
import { ROOT } from '../helpers/processes.js'

/** One rendered Kubernetes object, as parsed from `kubectl kustomize` output. */
export interface K8sObject {
  apiVersion: string
  kind: string
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> }
  [field: string]: unknown
}

export const K8S_DIR = join(ROOT, 'k8s')
export const OVERLAYS = ['eks', 'gke', 'generic'] as const
export type Overlay = (typeof OVERLAYS)[number]
export const COMPONENTS = ['servicemonitor', 'keda-vllm', 'model-from-s3', 'model-from-gcs'] as const

/** Parses a multi-document YAML stream, failing on the first document with errors. */
export function parseObjects(text: string, what: string): K8sObject[] {
  const out: K8sObject[] = []
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`${what}: ${doc.errors[0]!.message}`)
    const value = doc.toJS() as K8sObject | null
    if (value !== null) out.push(value)
  }
  return out
}

/** `kubectl kustomize DIR`, parsed. Throws with kubectl's stderr when rendering fails. */
export function kustomize(dir: string): K8sObject[] {
  const res = spawnSync('kubectl', ['kustomize', dir], { encoding: 'utf8', timeout: 60_000, maxBuffer: 32 << 20 })
  if (res.error) {
    throw new Error(
      `kubectl kustomize ${dir}: ${res.error.message} (kubectl 1.27+ is needed: apt-get install kubectl, from Kubernetes' apt repository)`,
    )
  }
  if (res.status !== 0) throw new Error(`kubectl kustomize ${relative(ROOT, dir)} failed:\n${res.stderr}`)
  return parseObjects(res.stdout, dir)
}

const rendered = new Map<Overlay, K8sObject[]>()

/** Renders an overlay (once per process; callers must not mutate the result). */
export function renderOverlay(name: Overlay): K8sObject[] {
  if (!rendered.has(name)) rendered.set(name, kustomize(join(K8S_DIR, 'overlays', name)))
  return rendered.get(name)!
}

/**
 * Renders a throwaway kustomization that adds `components` (names under k8s/components) and
 * extra resource dirs (relative to k8s/) to an overlay: what a user gets by uncommenting them.
 * Kustomize accepts only relative paths, so they are written relative to the temp dir.
 */
export function renderWith(overlay: Overlay, components: string[], extraResources: string[] = [], extraYaml = ''): K8sObject[] {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-kustomize-'))
  try {
    const rel = (p: string) => relative(dir, join(K8S_DIR, p))
    const lines = [
      'apiVersion: kustomize.config.k8s.io/v1beta1',
      'kind: Kustomization',
      'resources:',
      `  - ${rel(`overlays/${overlay}`)}`,
      ...extraResources.map((r) => `  - ${rel(r)}`),
    ]
    if (components.length > 0) lines.push('components:', ...components.map((c) => `  - ${rel(`components/${c}`)}`))
    writeFileSync(join(dir, 'kustomization.yaml'), lines.join('\n') + '\n' + extraYaml)
    return kustomize(dir)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** The object of that kind and name, or a failed assertion naming what is there. */
export function find(objs: K8sObject[], kind: string, name: string): K8sObject {
  const hit = objs.find((o) => o.kind === kind && o.metadata.name === name)
  if (!hit) {
    const have = objs.filter((o) => o.kind === kind).map((o) => o.metadata.name)
    throw new Error(`no ${kind} "${name}" in the render (${kind}s: ${have.join(', ') || 'none'})`)
  }
  return hit
}

export interface PodTemplate {
  owner: K8sObject
  /** Which template of the owner (LeaderWorkerSet has two). */
  role: string
  metadata: { labels?: Record<string, string>; annotations?: Record<string, string> }
  spec: PodSpec
}

export interface Container {
  name: string
  image?: string
  command?: string[]
  args?: string[]
  env?: { name: string; value?: string; valueFrom?: Record<string, Record<string, unknown>> }[]
  ports?: { name?: string; containerPort: number; protocol?: string }[]
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> }
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[]
  livenessProbe?: Probe
  readinessProbe?: Probe
  startupProbe?: Probe
  securityContext?: Record<string, unknown>
}

export interface Probe {
  httpGet?: { path?: string; port: number | string }
  tcpSocket?: { port: number | string }
  exec?: { command: string[] }
  grpc?: { port: number }
}

export interface PodSpec {
  containers: Container[]
  initContainers?: Container[]
  volumes?: ({ name: string } & Record<string, Record<string, unknown> | string>)[]
  nodeSelector?: Record<string, string>
  tolerations?: { key?: string; operator?: string; value?: string; effect?: string }[]
  securityContext?: Record<string, unknown>
  serviceAccountName?: string
  restartPolicy?: string
  [field: string]: unknown
}

/** Every pod template in the render: Deployments, StatefulSets, Jobs, LeaderWorkerSets. */
export function podTemplates(objs: K8sObject[]): PodTemplate[] {
  const out: PodTemplate[] = []
  for (const o of objs) {
    const spec = o.spec as Record<string, unknown> | undefined
    if (!spec) continue
    if (['Deployment', 'StatefulSet', 'Job', 'DaemonSet', 'ReplicaSet'].includes(o.kind)) {
      const t = spec.template as PodTemplate
      out.push({ owner: o, role: 'template', metadata: t.metadata ?? {}, spec: t.spec })
    } else if (o.kind === 'LeaderWorkerSet') {
      const lwt = spec.leaderWorkerTemplate as Record<string, PodTemplate>
      if (lwt.leaderTemplate) out.push({ owner: o, role: 'leader', metadata: lwt.leaderTemplate.metadata ?? {}, spec: lwt.leaderTemplate.spec })
      out.push({ owner: o, role: 'worker', metadata: lwt.workerTemplate!.metadata ?? {}, spec: lwt.workerTemplate!.spec })
    }
  }
  return out
}

/** The template of one workload (first template for multi-template kinds). */
export function templateOf(objs: K8sObject[], kind: string, name: string): PodTemplate {
  const owner = find(objs, kind, name)
  return podTemplates([owner])[0]!
}

/** Does a label selector ({matchLabels, matchExpressions}) select these labels? */
export function selects(
  selector: { matchLabels?: Record<string, string>; matchExpressions?: { key: string; operator: string; values?: string[] }[] } | undefined,
  labels: Record<string, string> = {},
): boolean {
  if (!selector) return true
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false
  for (const e of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key)
    const inValues = has && (e.values ?? []).includes(labels[e.key]!)
    if (e.operator === 'In' && !inValues) return false
    if (e.operator === 'NotIn' && inValues) return false
    if (e.operator === 'Exists' && !has) return false
    if (e.operator === 'DoesNotExist' && has) return false
  }
  return true
}

/**
 * The environment a container sees, the way the kubelet builds it: secret and ConfigMap
 * references become `secrets(name, key)`, and `$(VAR)` in a value expands to an entry
 * defined earlier in the list (later or unknown ones stay literal, as in Kubernetes).
 */
export function containerEnv(c: Container, secret: (name: string, key: string) => string): Record<string, string> {
  const env: Record<string, string> = {}
  for (const e of c.env ?? []) {
    if (e.value !== undefined) {
      env[e.name] = e.value.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, n: string) => env[n] ?? m)
    } else if (e.valueFrom?.secretKeyRef) {
      const ref = e.valueFrom.secretKeyRef as { name: string; key: string }
      env[e.name] = secret(ref.name, ref.key)
    }
  }
  return env
}

// What the API server or the kubelet would only find out after `kubectl apply`: references
// between the rendered objects (volumes, ports, selectors, ConfigMaps, PVCs, Secrets), and
// the "restricted" Pod Security Standard that the namespace enforces.
import { podTemplates, selects, type Container, type K8sObject, type PodTemplate } from './kustomize.js'

/** Objects that the render refers to but that users create themselves (documented). */
export interface External {
  /** Secret name -> the keys the docs tell users to put in it. */
  secrets: Record<string, string[]>
  storageClasses?: string[]
}

const BYTES: Record<string, number> = { '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, Ti: 1024 ** 4, m: 1e-3 }

/** A resource quantity ("500m", "13Gi", "2") as a number. */
export function quantity(q: string | number): number {
  if (typeof q === 'number') return q
  const m = /^(\d+(?:\.\d+)?)([a-zA-Z]*)$/.exec(q)
  if (!m || !(m[2]! in BYTES)) throw new Error(`unsupported quantity ${q}`)
  return Number(m[1]) * BYTES[m[2]!]!
}

function containersOf(t: PodTemplate): Container[] {
  return [...(t.spec.initContainers ?? []), ...t.spec.containers]
}

function where(t: PodTemplate): string {
  return `${t.owner.kind}/${t.owner.metadata.name}${t.role === 'template' ? '' : ` (${t.role})`}`
}

function selected(objs: K8sObject[], ns: string | undefined, sel: Parameters<typeof selects>[0]): PodTemplate[] {
  return podTemplates(objs).filter((t) => t.owner.metadata.namespace === ns && selects(sel, t.metadata.labels))
}

function checkPod(t: PodTemplate, objs: K8sObject[], ext: External, errs: string[]): void {
  const at = where(t)
  const ns = t.owner.metadata.namespace
  const has = (kind: string, name: string) => objs.some((o) => o.kind === kind && o.metadata.name === name && o.metadata.namespace === ns)
  const volumes = t.spec.volumes ?? []
  const volumeNames = volumes.map((v) => v.name)
  if (new Set(volumeNames).size !== volumeNames.length) errs.push(`${at}: duplicate volume names`)
  const containers = containersOf(t)
  const names = containers.map((c) => c.name)
  if (new Set(names).size !== names.length) errs.push(`${at}: duplicate container names ${names.join(', ')}`)
  const mounted = new Set<string>()
  for (const v of volumes) {
    const cm = v.configMap as { name?: string } | undefined
    if (cm && !has('ConfigMap', cm.name ?? '')) errs.push(`${at}: volume ${v.name} refers to ConfigMap ${cm.name}, not in the render`)
    const pvc = v.persistentVolumeClaim as { claimName?: string } | undefined
    if (pvc && !has('PersistentVolumeClaim', pvc.claimName ?? '')) errs.push(`${at}: volume ${v.name} refers to PVC ${pvc.claimName}, not in the render`)
  }
  const sa = t.spec.serviceAccountName
  if (sa && !has('ServiceAccount', sa)) errs.push(`${at}: serviceAccountName ${sa} is not in the render`)
  for (const c of containers) {
    const cat = `${at} container ${c.name}`
    const paths = new Set<string>()
    for (const m of c.volumeMounts ?? []) {
      if (!volumeNames.includes(m.name)) errs.push(`${cat}: mounts volume ${m.name}, which the pod does not have`)
      if (paths.has(m.mountPath)) errs.push(`${cat}: two mounts at ${m.mountPath}`)
      paths.add(m.mountPath)
      mounted.add(m.name)
    }
    const envNames = new Set<string>()
    for (const e of c.env ?? []) {
      if (envNames.has(e.name)) errs.push(`${cat}: env ${e.name} set twice`)
      // $(VAR) expands only to variables defined earlier in the list.
      for (const [, ref] of (e.value ?? '').matchAll(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g)) {
        if (!envNames.has(ref!)) errs.push(`${cat}: env ${e.name} uses $(${ref}) before it is defined`)
      }
      envNames.add(e.name)
      const sk = e.valueFrom?.secretKeyRef as { name: string; key: string; optional?: boolean } | undefined
      if (sk) {
        const rendered = objs.find((o) => o.kind === 'Secret' && o.metadata.name === sk.name)
        const keys = rendered ? Object.keys({ ...(rendered.data ?? {}), ...(rendered.stringData ?? {}) }) : ext.secrets[sk.name]
        if (!keys) errs.push(`${cat}: env ${e.name} refers to Secret ${sk.name}, neither rendered nor documented`)
        else if (!keys.includes(sk.key)) errs.push(`${cat}: env ${e.name} refers to key ${sk.key}, not among ${sk.name}'s documented keys`)
      }
    }
    for (const a of [...(c.command ?? []), ...(c.args ?? [])]) {
      for (const [, ref] of a.matchAll(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g)) {
        if (!envNames.has(ref!)) errs.push(`${cat}: argument uses $(${ref}), which is not in its env`)
      }
    }
    const ports = c.ports ?? []
    for (const [kind, p] of [['liveness', c.livenessProbe], ['readiness', c.readinessProbe], ['startup', c.startupProbe]] as const) {
      const port = p?.httpGet?.port ?? p?.tcpSocket?.port ?? p?.grpc?.port
      if (port === undefined) continue
      const ok = typeof port === 'number' ? ports.some((x) => x.containerPort === port) : ports.some((x) => x.name === port)
      if (!ok) errs.push(`${cat}: ${kind} probe port ${port} is not a port of the container`)
    }
    for (const res of ['cpu', 'memory']) {
      const req = c.resources?.requests?.[res]
      const lim = c.resources?.limits?.[res]
      if (req !== undefined && lim !== undefined && quantity(req) > quantity(lim)) errs.push(`${cat}: ${res} request ${req} above its limit ${lim}`)
    }
    for (const [res, req] of Object.entries(c.resources?.requests ?? {})) {
      if (!res.includes('/')) continue
      const lim = c.resources?.limits?.[res]
      if (lim === undefined || quantity(lim) !== quantity(req)) errs.push(`${cat}: extended resource ${res} needs a limit equal to its request`)
    }
  }
  for (const v of volumeNames) if (!mounted.has(v)) errs.push(`${at}: volume ${v} is mounted by no container`)
  const restart = t.spec.restartPolicy
  if (t.owner.kind === 'Job' && restart !== 'OnFailure' && restart !== 'Never') errs.push(`${at}: a Job's pods need restartPolicy OnFailure or Never`)
  if (t.owner.kind !== 'Job' && restart !== undefined && restart !== 'Always') errs.push(`${at}: restartPolicy must be Always`)
  const aff = t.spec.affinity as { podAffinity?: { requiredDuringSchedulingIgnoredDuringExecution?: { labelSelector?: Parameters<typeof selects>[0] }[] } } | undefined
  for (const term of aff?.podAffinity?.requiredDuringSchedulingIgnoredDuringExecution ?? []) {
    if (selected(objs, ns, term.labelSelector).length === 0) errs.push(`${at}: required podAffinity selects no pod of the render; it could never schedule`)
  }
  const spread = (t.spec.topologySpreadConstraints ?? []) as { labelSelector?: Parameters<typeof selects>[0] }[]
  for (const c of spread) if (!selects(c.labelSelector, t.metadata.labels)) errs.push(`${at}: topology spread selector does not select its own pods`)
}

/** Cross-object references and controller invariants; returns the problems found. */
export function checkReferences(objs: K8sObject[], ext: External): string[] {
  const errs: string[] = []
  const ids = objs.map((o) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`)
  for (const id of ids) if (ids.indexOf(id) !== ids.lastIndexOf(id)) errs.push(`${id}: rendered twice`)
  for (const t of podTemplates(objs)) checkPod(t, objs, ext, errs)
  for (const o of objs) {
    const at = `${o.kind}/${o.metadata.name}`
    const spec = (o.spec ?? {}) as Record<string, any>
    const ns = o.metadata.namespace
    if (o.kind === 'Deployment' || o.kind === 'StatefulSet') {
      if (!selects(spec.selector, spec.template?.metadata?.labels)) errs.push(`${at}: selector does not match the pod template's labels`)
      if (spec.strategy?.type === 'Recreate' && spec.strategy.rollingUpdate) errs.push(`${at}: Recreate with rollingUpdate settings`)
    }
    if (o.kind === 'StatefulSet') {
      const svc = objs.find((s) => s.kind === 'Service' && s.metadata.name === spec.serviceName && s.metadata.namespace === ns)
      if (!svc || (svc.spec as any).clusterIP !== 'None') errs.push(`${at}: serviceName ${spec.serviceName} is not a headless Service of the render`)
    }
    if (o.kind === 'Service') {
      const pods = selected(objs, ns, { matchLabels: spec.selector })
      if (pods.length === 0) errs.push(`${at}: selects no pod of the render`)
      if (spec.ports.length > 1 && spec.ports.some((p: any) => !p.name)) errs.push(`${at}: several ports, not all named`)
      for (const p of spec.ports) {
        const target = p.targetPort ?? p.port
        for (const t of pods) {
          const ok = t.spec.containers.some((c) => (c.ports ?? []).some((cp) => (typeof target === 'number' ? cp.containerPort === target : cp.name === target)))
          if (!ok) errs.push(`${at}: port ${p.name ?? p.port} targets ${target}, which ${where(t)} does not expose`)
        }
      }
    }
    if (o.kind === 'PodDisruptionBudget' && selected(objs, ns, spec.selector).length === 0) errs.push(`${at}: selects no pod`)
    if (o.kind === 'HorizontalPodAutoscaler' || o.kind === 'ScaledObject') {
      const ref = spec.scaleTargetRef
      const target = objs.find((t) => t.kind === (ref.kind ?? 'Deployment') && t.metadata.name === ref.name && t.metadata.namespace === ns)
      if (!target) errs.push(`${at}: scale target ${ref.kind ?? 'Deployment'}/${ref.name} is not in the render`)
      if (o.kind === 'HorizontalPodAutoscaler' && spec.minReplicas > spec.maxReplicas) errs.push(`${at}: minReplicas above maxReplicas`)
      if (o.kind === 'ScaledObject' && spec.minReplicaCount > spec.maxReplicaCount) errs.push(`${at}: minReplicaCount above maxReplicaCount`)
      const cpu = (spec.metrics ?? []).some((m: any) => m.resource?.name === 'cpu')
      const pod = target ? podTemplates([target])[0] : undefined
      if (cpu && pod && pod.spec.containers.some((c) => !c.resources?.requests?.cpu)) errs.push(`${at}: scales on CPU but a container of its target has no CPU request`)
    }
    if (o.kind === 'ServiceMonitor') {
      const svcs = objs.filter((s) => s.kind === 'Service' && s.metadata.namespace === ns && selects(spec.selector, s.metadata.labels))
      if (svcs.length === 0) errs.push(`${at}: selects no Service`)
      for (const ep of spec.endpoints) {
        for (const s of svcs) if (!(s.spec as any).ports.some((p: any) => p.name === ep.port)) errs.push(`${at}: Service ${s.metadata.name} has no port named ${ep.port}`)
      }
    }
    if (o.kind === 'PersistentVolumeClaim' && spec.storageClassName) {
      const known = objs.some((s) => s.kind === 'StorageClass' && s.metadata.name === spec.storageClassName) || (ext.storageClasses ?? []).includes(spec.storageClassName)
      if (!known) errs.push(`${at}: StorageClass ${spec.storageClassName} is neither rendered nor documented`)
    }
    if (o.kind === 'NetworkPolicy' && Object.keys(spec.podSelector ?? {}).length > 0 && selected(objs, ns, spec.podSelector).length === 0) {
      errs.push(`${at}: selects no pod of the render`)
    }
  }
  return errs
}

const RESTRICTED_VOLUMES = ['name', 'configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral', 'persistentVolumeClaim', 'projected', 'secret']

/** The "restricted" Pod Security Standard (the namespace enforces it): problems per pod. */
export function checkRestricted(objs: K8sObject[]): string[] {
  const errs: string[] = []
  for (const t of podTemplates(objs)) {
    const at = where(t)
    const pod = (t.spec.securityContext ?? {}) as Record<string, any>
    for (const f of ['hostNetwork', 'hostPID', 'hostIPC']) if (t.spec[f] === true) errs.push(`${at}: ${f}`)
    for (const v of t.spec.volumes ?? []) {
      const type = Object.keys(v).find((k) => !RESTRICTED_VOLUMES.includes(k))
      if (type) errs.push(`${at}: volume ${v.name} of type ${type}`)
    }
    for (const c of containersOf(t)) {
      const sc = (c.securityContext ?? {}) as Record<string, any>
      const cat = `${at} container ${c.name}`
      if (sc.privileged === true) errs.push(`${cat}: privileged`)
      if (sc.allowPrivilegeEscalation !== false) errs.push(`${cat}: allowPrivilegeEscalation must be false`)
      if (!(sc.capabilities?.drop ?? []).includes('ALL')) errs.push(`${cat}: must drop ALL capabilities`)
      if ((sc.capabilities?.add ?? []).some((cap: string) => cap !== 'NET_BIND_SERVICE')) errs.push(`${cat}: adds capabilities`)
      if ((sc.runAsNonRoot ?? pod.runAsNonRoot) !== true) errs.push(`${cat}: runAsNonRoot must be true`)
      if ((sc.runAsUser ?? pod.runAsUser) === 0) errs.push(`${cat}: runs as uid 0`)
      const seccomp = (sc.seccompProfile ?? pod.seccompProfile)?.type
      if (seccomp !== 'RuntimeDefault' && seccomp !== 'Localhost') errs.push(`${cat}: seccompProfile must be RuntimeDefault or Localhost`)
      if ((c.ports ?? []).some((p) => (p as { hostPort?: number }).hostPort)) errs.push(`${cat}: hostPort`)
    }
  }
  return errs
}

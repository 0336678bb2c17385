// Every overlay (and every optional component on top of it) renders with `kubectl kustomize`,
// and every rendered object passes the structural schema check, the cross-reference check and
// the "restricted" Pod Security Standard its namespace enforces.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT } from '../helpers/processes.js'
import { checkObject } from './k8s-schema.js'
import { checkReferences, checkRestricted, type External } from './k8s-rules.js'
import { COMPONENTS, K8S_DIR, OVERLAYS, find, kustomize, renderOverlay, renderWith, templateOf, type K8sObject } from './kustomize.js'

/** What docs/deployment.md tells users to create before `kubectl apply -k`. */
export const EXTERNAL: External = {
  secrets: { 'gatehouse-secrets': ['admin-token', 'vllm-api-key', 'redis-password', 'hf-token'] },
  // The LeaderWorkerSet example names an RWX class the user must provide (its README).
  storageClasses: ['efs-sc'],
}

const BUILTIN_KINDS = new Set([
  'Namespace', 'ServiceAccount', 'ConfigMap', 'Service', 'Deployment', 'StatefulSet', 'Job', 'PersistentVolumeClaim',
  'PodDisruptionBudget', 'HorizontalPodAutoscaler', 'NetworkPolicy', 'StorageClass',
])

function assertValid(objs: K8sObject[], what: string): void {
  assert.ok(objs.length > 0, `${what}: rendered nothing`)
  const problems = [...objs.flatMap((o) => checkObject(o)), ...checkReferences(objs, EXTERNAL), ...checkRestricted(objs)]
  assert.deepEqual(problems, [], `${what}:\n${problems.join('\n')}`)
}

describe('the structural checker', () => {
  // It must catch what a schema validator catches, or its green means nothing.
  const base = () => structuredClone(find(renderOverlay('generic'), 'Deployment', 'gatehouse'))
  const cases: [string, (d: any) => void, RegExp][] = [
    ['an unknown field', (d) => (d.spec.template.spec.containers[0].imagePullPolcy = 'Always'), /imagePullPolcy: unknown field/],
    ['a string port', (d) => (d.spec.template.spec.containers[0].ports[0].containerPort = '8080'), /containerPort: expected an integer/],
    ['a missing required field', (d) => delete d.spec.selector, /spec\.selector: required/],
    ['a bad enum value', (d) => (d.spec.strategy.type = 'Rolling'), /is not one of Recreate, RollingUpdate/],
    ['a bad quantity', (d) => (d.spec.template.spec.containers[0].resources.limits.memory = '512 MB'), /expected a quantity/],
    ['a bad label value', (d) => (d.metadata.labels['app.kubernetes.io/name'] = 'gate house'), /does not match/],
    ['a probe with two handlers', (d) => (d.spec.template.spec.containers[0].livenessProbe.tcpSocket = { port: 8080 }), /exactly one of httpGet/],
  ]
  for (const [name, mutate, expected] of cases) {
    it(`rejects ${name}`, () => {
      const d = base()
      mutate(d)
      assert.match(checkObject(d).join('\n'), expected)
    })
  }

  it('rejects broken references: a mount without volume, a probe on a missing port, a selector that selects nothing', () => {
    const objs = structuredClone(renderOverlay('generic'))
    const gw = templateOf(objs, 'Deployment', 'gatehouse')
    gw.spec.containers[0]!.volumeMounts!.push({ name: 'nowhere', mountPath: '/x' })
    gw.spec.containers[0]!.readinessProbe!.httpGet!.port = 'htpp'
    ;(find(objs, 'Service', 'redis').spec as any).selector = { 'app.kubernetes.io/name': 'redis-typo' }
    const problems = checkReferences(objs, EXTERNAL).join('\n')
    assert.match(problems, /mounts volume nowhere, which the pod does not have/)
    assert.match(problems, /readiness probe port htpp is not a port of the container/)
    assert.match(problems, /Service\/redis: selects no pod of the render/)
  })

  it('rejects a pod that the restricted Pod Security Standard would refuse', () => {
    const objs = structuredClone(renderOverlay('generic'))
    const sc = templateOf(objs, 'Deployment', 'vllm-mistral').spec.containers[0]!.securityContext!
    delete sc.allowPrivilegeEscalation
    assert.match(checkRestricted(objs).join('\n'), /vllm-mistral container vllm: allowPrivilegeEscalation must be false/)
  })
})

for (const overlay of OVERLAYS) {
  describe(`overlay ${overlay}`, () => {
    it('renders and every object is valid', () => {
      assertValid(renderOverlay(overlay), overlay)
    })

    it('has only built-in kinds, so a cluster without extra CRDs accepts it', () => {
      const kinds = new Set(renderOverlay(overlay).map((o) => o.kind))
      for (const k of kinds) assert.ok(BUILTIN_KINDS.has(k), `${overlay} renders ${k}, which needs a CRD: move it to a component`)
    })

    it('puts every namespaced object into the llm namespace, which enforces the restricted standard', () => {
      const objs = renderOverlay(overlay)
      const ns = find(objs, 'Namespace', 'llm')
      assert.equal(ns.metadata.labels?.['pod-security.kubernetes.io/enforce'], 'restricted')
      for (const o of objs) if (!['Namespace', 'StorageClass'].includes(o.kind)) assert.equal(o.metadata.namespace, 'llm', `${o.kind}/${o.metadata.name}`)
    })

    it('renders with every optional component added, and each object is valid', () => {
      assertValid(renderWith(overlay, [...COMPONENTS]), `${overlay} + all components`)
      for (const c of COMPONENTS) assertValid(renderWith(overlay, [c]), `${overlay} + ${c}`)
    })

    it('renders with the LeaderWorkerSet example added, and each object is valid', () => {
      const objs = renderWith(overlay, [], ['optional/leaderworkerset'])
      assertValid(objs, `${overlay} + leaderworkerset`)
      find(objs, 'LeaderWorkerSet', 'vllm-llama70b')
    })
  })
}

describe('overridable image', () => {
  it('the gateway image follows the kustomize images: override the docs show', () => {
    const objs = renderWith('eks', [], [], 'images:\n  - name: ghcr.io/your-org/gatehouse\n    newName: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/gatehouse\n    newTag: 1.2.3\n')
    assert.equal(templateOf(objs, 'Deployment', 'gatehouse').spec.containers[0]!.image, '123456789012.dkr.ecr.eu-west-1.amazonaws.com/gatehouse:1.2.3')
  })

  it('the default is the documented placeholder', () => {
    assert.equal(templateOf(renderOverlay('gke'), 'Deployment', 'gatehouse').spec.containers[0]!.image, 'ghcr.io/your-org/gatehouse:0.1.0')
  })
})

describe('dashboards ConfigMap', () => {
  it('holds every dashboards/*.json, unchanged, labelled for the Grafana sidecar', () => {
    const files = readdirSync(join(ROOT, 'dashboards')).filter((f) => f.endsWith('.json')).sort()
    assert.ok(files.length >= 3)
    for (const overlay of OVERLAYS) {
      const cm = find(renderOverlay(overlay), 'ConfigMap', 'gatehouse-dashboards')
      assert.equal(cm.metadata.labels?.grafana_dashboard, '1')
      const data = cm.data as Record<string, string>
      assert.deepEqual(Object.keys(data).sort(), files)
      for (const f of files) assert.equal(data[f], readFileSync(join(ROOT, 'dashboards', f), 'utf8'), f)
    }
  })

  it('stays under the size kubectl apply can record in its last-applied annotation', () => {
    const text = JSON.stringify(find(renderOverlay('generic'), 'ConfigMap', 'gatehouse-dashboards'))
    assert.ok(text.length < 200_000, `${text.length} bytes`)
  })
})

describe('the base alone', () => {
  it('renders too (overlays only add placement and storage)', () => {
    assert.ok(kustomize(join(K8S_DIR, 'base')).length > 20)
  })
})

// The NetworkPolicies isolate what they claim, evaluated against the rendered pods' labels and
// against pods and hosts outside the namespace: only the gateway reaches vLLM, Ollama and
// Redis; the replicas reach nothing but DNS; only the download Jobs reach the internet.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { OVERLAYS, renderOverlay, renderWith, type K8sObject } from './kustomize.js'
import { allowed, host, isolated, outsidePod, podsOf, policiesOf, type Endpoint } from './netpol.js'

const PROBE_PORTS = [22, 53, 80, 443, 988, 3000, 6379, 8000, 8080, 9090, 9464, 11434]

interface World {
  policies: ReturnType<typeof policiesOf>
  pods: Endpoint[]
  pod: (name: string) => Endpoint
  everyone: Endpoint[]
  outside: Record<string, Endpoint>
}

function world(objs: K8sObject[]): World {
  const pods = podsOf(objs)
  const outside = {
    client: outsidePod('app-client', 'apps', { app: 'chat-ui' }, { 'gatehouse.io/access': 'true' }),
    stranger: outsidePod('stranger', 'default', { app: 'whatever' }),
    // Right labels, wrong namespace: a pod elsewhere must not pass as the gateway.
    impostor: outsidePod('impostor', 'default', { 'app.kubernetes.io/name': 'gatehouse', 'app.kubernetes.io/component': 'gateway' }),
    prometheus: outsidePod('prometheus', 'monitoring', { 'app.kubernetes.io/name': 'prometheus' }),
    grafana: outsidePod('grafana', 'monitoring', { 'app.kubernetes.io/name': 'grafana' }),
    dns: outsidePod('coredns', 'kube-system', { 'k8s-app': 'kube-dns' }),
    internet: host('internet', '93.184.216.34'),
    awsIdentity: host('eks-pod-identity', '169.254.170.23'),
    gceMetadata: host('gke-metadata', '169.254.169.254'),
  }
  const pod = (name: string) => {
    const p = pods.find((x) => x.name === name)
    assert.ok(p, `no pod ${name} in the render (${pods.map((x) => x.name).join(', ')})`)
    return p
  }
  return { policies: policiesOf(objs), pods, pod, everyone: [...pods, ...Object.values(outside)], outside }
}

function assertOnly(w: World, dst: Endpoint, port: number, allowedFrom: string[]): void {
  const got = w.everyone.filter((src) => src !== dst && allowed(w.policies, src, dst, port)).map((s) => s.name).sort()
  assert.deepEqual(got, [...allowedFrom].sort(), `who reaches ${dst.name}:${port}`)
}

function assertEgressOnlyDns(w: World, src: Endpoint): void {
  for (const dst of w.everyone) {
    if (dst === src) continue
    for (const port of PROBE_PORTS) {
      const expect = dst === w.outside.dns && port === 53
      assert.equal(allowed(w.policies, src, dst, port, 'TCP'), expect, `${src.name} -> ${dst.name}:${port}/TCP`)
    }
  }
  assert.ok(allowed(w.policies, src, w.outside.dns, 53, 'UDP'), `${src.name} resolves names`)
}

for (const overlay of OVERLAYS) {
  describe(`${overlay}: network isolation`, () => {
    const w = world(renderOverlay(overlay))

    it('every pod of the set is under a default deny, both ways', () => {
      for (const p of w.pods) assert.ok(isolated(w.policies, p), `${p.name} is not selected by ingress and egress policies`)
    })

    it('the gateway reaches vLLM, Ollama and Redis', () => {
      const gw = w.pod('gatehouse')
      assert.ok(allowed(w.policies, gw, w.pod('vllm-mistral'), 8000))
      assert.ok(allowed(w.policies, gw, w.pod('ollama'), 11434))
      assert.ok(allowed(w.policies, gw, w.pod('redis'), 6379))
    })

    it('nothing else reaches vLLM, Ollama or Redis on any port (Prometheus only vLLM /metrics on 8000)', () => {
      for (const port of PROBE_PORTS) {
        assertOnly(w, w.pod('vllm-mistral'), port, port === 8000 ? ['gatehouse', 'prometheus'] : [])
        assertOnly(w, w.pod('ollama'), port, port === 11434 ? ['gatehouse'] : [])
        assertOnly(w, w.pod('redis'), port, port === 6379 ? ['gatehouse'] : [])
      }
    })

    it('the replicas and Redis send nothing anywhere but DNS', () => {
      for (const name of ['vllm-mistral', 'ollama', 'redis']) assertEgressOnlyDns(w, w.pod(name))
    })

    it('callers reach the gateway from labelled namespaces only; Prometheus only its metrics port', () => {
      const gw = w.pod('gatehouse')
      assertOnly(w, gw, 8080, ['app-client'])
      assertOnly(w, gw, 9464, ['prometheus'])
      for (const port of PROBE_PORTS.filter((p) => p !== 8080 && p !== 9464)) assertOnly(w, gw, port, [])
    })

    it('only the download Jobs reach the internet, over HTTPS only; nobody connects to them', () => {
      for (const job of ['model-download-mistral', 'ollama-pull']) {
        const p = w.pod(job)
        assert.ok(allowed(w.policies, p, w.outside.internet, 443), `${job} -> internet:443`)
        assert.ok(!allowed(w.policies, p, w.outside.internet, 80), `${job} -> internet:80`)
        for (const port of PROBE_PORTS) assertOnly(w, p, port, [])
        assert.ok(!allowed(w.policies, p, w.pod('vllm-mistral'), 8000), `${job} -> vLLM`)
      }
      for (const name of ['vllm-mistral', 'ollama', 'redis']) assert.ok(!allowed(w.policies, w.pod(name), w.outside.internet, 443))
    })

    it('the gateway goes out over HTTPS only (OIDC discovery and JWKS)', () => {
      const gw = w.pod('gatehouse')
      assert.ok(allowed(w.policies, gw, w.outside.internet, 443))
      for (const port of PROBE_PORTS.filter((p) => p !== 443)) assert.ok(!allowed(w.policies, gw, w.outside.internet, port), `gateway -> internet:${port}`)
    })
  })
}

describe('network isolation with the optional pieces', () => {
  it('model-from-s3 / model-from-gcs open the cloud identity endpoints to the download Job only', () => {
    for (const [component, target, port] of [['model-from-s3', 'awsIdentity', 80], ['model-from-gcs', 'gceMetadata', 80]] as const) {
      const w = world(renderWith('generic', [component]))
      const dst = w.outside[target]!
      assert.ok(allowed(w.policies, w.pod('model-download-mistral'), dst, port), component)
      for (const name of ['gatehouse', 'vllm-mistral', 'ollama', 'redis']) assert.ok(!allowed(w.policies, w.pod(name), dst, port), `${component}: ${name}`)
    }
  })

  it('LeaderWorkerSet: group members talk to each other; the gateway reaches the leader; nothing leaves', () => {
    const w = world(renderWith('eks', [], ['optional/leaderworkerset']))
    const leader = w.pod('vllm-llama70b-leader')
    const worker = w.pod('vllm-llama70b-worker')
    assert.ok(allowed(w.policies, worker, leader, 6379))
    assert.ok(allowed(w.policies, leader, worker, 29500))
    assert.ok(allowed(w.policies, w.pod('gatehouse'), leader, 8000))
    for (const p of [leader, worker]) {
      assert.ok(!allowed(w.policies, p, w.outside.internet, 443))
      assert.ok(!allowed(w.policies, p, w.pod('vllm-mistral'), 8000))
      assert.ok(!allowed(w.policies, w.outside.stranger, p, 8000))
      assert.ok(!allowed(w.policies, w.pod('redis'), p, 6379))
    }
  })
})

describe('the evaluator', () => {
  it('sees a hole when one is made (an allow-all ingress on Redis)', () => {
    const objs = structuredClone(renderOverlay('generic'))
    objs.push({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'oops', namespace: 'llm' }, spec: { podSelector: {}, ingress: [{}] } })
    const w = world(objs)
    assert.ok(allowed(w.policies, w.pod('ollama'), w.pod('redis'), 6379) === false, 'egress of ollama still blocks it')
    assert.ok(allowed(w.policies, w.outside.stranger, w.pod('redis'), 6379), 'but a pod outside now gets in')
  })
})

// What issue 8 and SPEC section 7 ask of each workload, checked on every overlay's render,
// plus what differs per cloud (GPU placement, storage).
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { OVERLAYS, find, renderOverlay, renderWith, templateOf, type Container, type K8sObject, type PodTemplate, type Probe } from './kustomize.js'
import { GATEWAY_NODE_FLAGS } from '../helpers/processes.js'

function portOf(c: Container, p: Probe | undefined): number | undefined {
  const port = p?.httpGet?.port ?? p?.tcpSocket?.port
  return typeof port === 'number' ? port : c.ports?.find((x) => x.name === port)?.containerPort
}

function mountAt(t: PodTemplate, c: Container, path: string): { readOnly?: boolean; volume: Record<string, any> } {
  const m = c.volumeMounts?.find((x) => x.mountPath === path)
  assert.ok(m, `${c.name}: nothing mounted at ${path}`)
  const volume = t.spec.volumes?.find((v) => v.name === m.name)
  assert.ok(volume, `${c.name}: no volume ${m.name}`)
  return { readOnly: m.readOnly, volume }
}

function secretEnv(c: Container, name: string): { name: string; key: string } {
  const e = c.env?.find((x) => x.name === name)
  const ref = e?.valueFrom?.secretKeyRef as { name: string; key: string } | undefined
  assert.ok(ref, `${c.name}: env ${name} does not come from a Secret`)
  return ref
}

const GPU_PLACEMENT: Record<(typeof OVERLAYS)[number], { nodeSelector: Record<string, string>; toleration: Record<string, string> }> = {
  eks: {
    nodeSelector: { 'k8s.amazonaws.com/accelerator': 'nvidia-ampere-a10', 'node-lifecycle': 'normal' },
    toleration: { key: 'nvidia.com/gpu', operator: 'Equal', value: 'true', effect: 'NoSchedule' },
  },
  gke: {
    nodeSelector: { 'cloud.google.com/gke-accelerator': 'nvidia-l4' },
    toleration: { key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' },
  },
  generic: {
    nodeSelector: { 'nvidia.com/gpu.present': 'true' },
    toleration: { key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' },
  },
}

for (const overlay of OVERLAYS) {
  describe(`${overlay}: workloads`, () => {
    const objs: K8sObject[] = renderOverlay(overlay)

    it('gateway: 2+ replicas, non-root, read-only root, emptyDirs for /tmp and data, resources, probes, ports', () => {
      const d = find(objs, 'Deployment', 'gatehouse') as any
      assert.ok(d.spec.replicas >= 2)
      const t = templateOf(objs, 'Deployment', 'gatehouse')
      const c = t.spec.containers[0]!
      assert.equal(t.spec.securityContext?.runAsNonRoot, true)
      assert.notEqual(t.spec.securityContext?.runAsUser, 0)
      assert.equal(c.securityContext?.readOnlyRootFilesystem, true)
      assert.ok(mountAt(t, c, '/tmp').volume.emptyDir)
      assert.ok(mountAt(t, c, '/app/data').volume.emptyDir)
      for (const r of ['cpu', 'memory']) assert.ok(c.resources?.requests?.[r], `request ${r}`)
      assert.ok(c.resources?.limits?.memory)
      assert.equal(c.livenessProbe?.httpGet?.path, '/healthz')
      assert.equal(portOf(c, c.livenessProbe), 8080)
      assert.equal(c.readinessProbe?.httpGet?.path, '/readyz')
      assert.equal(portOf(c, c.readinessProbe), 8080)
      assert.deepEqual(c.ports?.map((p) => p.containerPort).sort(), [8080, 9464])
      assert.deepEqual(c.command, ['node', ...GATEWAY_NODE_FLAGS, 'bin/gatehouse.js', 'serve'])
      const keys = (t.spec.topologySpreadConstraints as { topologyKey: string }[]).map((x) => x.topologyKey)
      assert.deepEqual(keys.sort(), ['kubernetes.io/hostname', 'topology.kubernetes.io/zone'])
      assert.equal(t.metadata.annotations?.['prometheus.io/scrape'], 'true')
      assert.equal(t.metadata.annotations?.['prometheus.io/port'], '9464')
    })

    it('gateway: admin token, vLLM key and Redis password come from the Secret', () => {
      const c = templateOf(objs, 'Deployment', 'gatehouse').spec.containers[0]!
      assert.deepEqual(secretEnv(c, 'GATEHOUSE_ADMIN_TOKEN'), { name: 'gatehouse-secrets', key: 'admin-token', optional: true })
      assert.equal(secretEnv(c, 'VLLM_API_KEY').key, 'vllm-api-key')
      assert.equal(secretEnv(c, 'REDIS_PASSWORD').key, 'redis-password')
      assert.equal(c.env?.find((e) => e.name === 'REDIS_URL')?.value, 'redis://:$(REDIS_PASSWORD)@redis:6379/0')
    })

    it('gateway: ClusterIP Service, PodDisruptionBudget and HPA', () => {
      const svc = find(objs, 'Service', 'gatehouse').spec as any
      assert.equal(svc.type, 'ClusterIP')
      assert.deepEqual(svc.ports.map((p: any) => p.port).sort(), [8080, 9464])
      assert.equal((find(objs, 'PodDisruptionBudget', 'gatehouse').spec as any).minAvailable, 1)
      const hpa = find(objs, 'HorizontalPodAutoscaler', 'gatehouse').spec as any
      assert.ok(hpa.minReplicas >= 2 && hpa.maxReplicas > hpa.minReplicas)
    })

    it('Redis: append-only persistence on a PVC, password from the Secret', () => {
      const t = templateOf(objs, 'StatefulSet', 'redis')
      const c = t.spec.containers[0]!
      const args = c.args!.join(' ')
      assert.match(args, /--appendonly yes/)
      assert.match(args, /--dir \/data/)
      assert.match(args, /--requirepass \$\(REDIS_PASSWORD\)/)
      assert.equal(secretEnv(c, 'REDIS_PASSWORD').key, 'redis-password')
      assert.equal(mountAt(t, c, '/data').volume.persistentVolumeClaim.claimName, 'redis-data')
    })

    it('vLLM: vllm-openai image, port 8000, --api-key from the Secret, GPU limit, /health readiness, /dev/shm in memory', () => {
      const t = templateOf(objs, 'Deployment', 'vllm-mistral')
      const c = t.spec.containers[0]!
      assert.match(c.image!, /^vllm\/vllm-openai:v\d/)
      assert.equal(c.ports?.[0]?.containerPort, 8000)
      assert.ok(c.args?.includes('--api-key=$(VLLM_API_KEY)'))
      assert.equal(secretEnv(c, 'VLLM_API_KEY').key, 'vllm-api-key')
      assert.equal(c.resources?.limits?.['nvidia.com/gpu'], '1')
      assert.equal(c.readinessProbe?.httpGet?.path, '/health')
      assert.equal(portOf(c, c.readinessProbe), 8000)
      assert.equal(mountAt(t, c, '/dev/shm').volume.emptyDir.medium, 'Memory')
    })

    it('vLLM: the model PVC is mounted read-only and is the one the download Job fills', () => {
      const t = templateOf(objs, 'Deployment', 'vllm-mistral')
      const c = t.spec.containers[0]!
      const m = mountAt(t, c, '/models')
      assert.equal(m.readOnly, true)
      assert.equal(m.volume.persistentVolumeClaim.readOnly, true)
      const job = templateOf(objs, 'Job', 'model-download-mistral')
      const jm = mountAt(job, job.spec.containers[0]!, '/models')
      assert.equal(jm.volume.persistentVolumeClaim.claimName, m.volume.persistentVolumeClaim.claimName)
      assert.notEqual(jm.readOnly, true)
      const name = job.spec.containers[0]!.env!.find((e) => e.name === 'MODEL_NAME')!.value
      assert.ok(c.args?.includes(`--model=/models/${name}`))
    })

    it('vLLM: a ClusterIP Service and a headless Service on port 8000', () => {
      const svc = find(objs, 'Service', 'vllm-mistral').spec as any
      assert.equal(svc.type, 'ClusterIP')
      assert.notEqual(svc.clusterIP, 'None')
      const headless = find(objs, 'Service', 'vllm-mistral-headless').spec as any
      assert.equal(headless.clusterIP, 'None')
      assert.equal(headless.ports[0].port, 8000)
    })

    it('Ollama: a Deployment with its model volume, and its Service', () => {
      const t = templateOf(objs, 'Deployment', 'ollama')
      const c = t.spec.containers[0]!
      assert.match(c.image!, /^ollama\/ollama:/)
      assert.equal(mountAt(t, c, '/models').volume.persistentVolumeClaim.claimName, 'ollama-models')
      assert.equal(c.env?.find((e) => e.name === 'OLLAMA_MODELS')?.value, '/models')
      assert.equal((find(objs, 'Service', 'ollama').spec as any).ports[0].port, 11434)
    })

    it(`GPU placement: vLLM and the download Job carry the ${overlay} node selector and toleration; others do not`, () => {
      const want = GPU_PLACEMENT[overlay]
      for (const [kind, name] of [['Deployment', 'vllm-mistral'], ['Job', 'model-download-mistral']] as const) {
        const spec = templateOf(objs, kind, name).spec
        assert.deepEqual(spec.nodeSelector, want.nodeSelector, `${kind}/${name}`)
        assert.deepEqual(spec.tolerations, [want.toleration], `${kind}/${name}`)
      }
      for (const name of ['gatehouse', 'ollama']) assert.equal(templateOf(objs, 'Deployment', name).spec.nodeSelector, undefined)
    })
  })
}

describe('storage per cloud', () => {
  for (const [overlay, provisioner, params] of [
    ['eks', 'ebs.csi.aws.com', { type: 'gp3' }],
    ['gke', 'pd.csi.storage.gke.io', { type: 'pd-balanced', 'replication-type': 'none' }],
  ] as const) {
    it(`${overlay}: a retaining, zone-following ${params.type} StorageClass used by every PVC`, () => {
      const objs = renderOverlay(overlay)
      const sc = find(objs, 'StorageClass', 'gatehouse-retain') as any
      assert.equal(sc.provisioner, provisioner)
      for (const [k, v] of Object.entries(params)) assert.equal(sc.parameters[k], v)
      assert.equal(sc.reclaimPolicy, 'Retain')
      assert.equal(sc.volumeBindingMode, 'WaitForFirstConsumer')
      const pvcs = objs.filter((o) => o.kind === 'PersistentVolumeClaim')
      assert.deepEqual(pvcs.map((p) => p.metadata.name).sort(), ['ollama-models', 'redis-data', 'vllm-models'])
      for (const p of pvcs) assert.equal((p.spec as any).storageClassName, 'gatehouse-retain', p.metadata.name)
    })
  }

  it('generic: no StorageClass of its own; PVCs use the cluster default until one is named', () => {
    const objs = renderOverlay('generic')
    assert.equal(objs.filter((o) => o.kind === 'StorageClass').length, 0)
    for (const p of objs.filter((o) => o.kind === 'PersistentVolumeClaim')) assert.equal((p.spec as any).storageClassName, undefined)
  })
})

describe('optional components', () => {
  it('keda-vllm scales the vLLM Deployment on vllm:num_requests_waiting and takes the replica count over', () => {
    const objs = renderWith('eks', ['keda-vllm'])
    const so = find(objs, 'ScaledObject', 'vllm-mistral').spec as any
    assert.equal(so.scaleTargetRef.name, 'vllm-mistral')
    assert.equal(so.triggers[0].type, 'prometheus')
    assert.match(so.triggers[0].metadata.query, /vllm:num_requests_waiting/)
    assert.equal((find(objs, 'Deployment', 'vllm-mistral').spec as any).replicas, undefined)
  })

  it('servicemonitor scrapes the gateway metrics port and vLLM', () => {
    const objs = renderWith('gke', ['servicemonitor'])
    assert.equal((find(objs, 'ServiceMonitor', 'gatehouse').spec as any).endpoints[0].port, 'metrics')
    assert.equal((find(objs, 'ServiceMonitor', 'vllm').spec as any).endpoints[0].port, 'http')
  })

  for (const [component, image, source, annotation] of [
    ['model-from-s3', /^amazon\/aws-cli:/, 's3', 'eks.amazonaws.com/role-arn'],
    ['model-from-gcs', /google-cloud-cli/, 'gcs', 'iam.gke.io/gcp-service-account'],
  ] as const) {
    it(`${component} switches the download Job to ${source} under a cloud identity`, () => {
      const objs = renderWith('generic', [component])
      const job = templateOf(objs, 'Job', 'model-download-mistral')
      const c = job.spec.containers[0]!
      assert.match(c.image!, image)
      assert.equal(c.env?.find((e) => e.name === 'MODEL_SOURCE')?.value, source)
      assert.deepEqual(c.command, ['/bin/sh', '/scripts/model-download.sh'])
      assert.equal(job.spec.serviceAccountName, 'model-download')
      assert.ok(find(objs, 'ServiceAccount', 'model-download').metadata.annotations?.[annotation])
    })
  }
})

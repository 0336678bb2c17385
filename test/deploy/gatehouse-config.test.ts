// The gateway's gatehouse.yaml, as rendered into its ConfigMap, passes `gatehouse check-config`
// with the environment the Deployment gives the container, and points at the objects that
// are really there: the headless vLLM Service, Ollama's Service, Redis.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse } from 'yaml'
import { BIN } from '../helpers/processes.js'
import { OVERLAYS, containerEnv, find, renderOverlay, templateOf, type K8sObject } from './kustomize.js'

/** Runs `gatehouse check-config` on `text` with exactly `env` (plus PATH). */
function checkConfig(text: string, env: Record<string, string>): { status: number | null; out: string } {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-config-'))
  try {
    const file = join(dir, 'gatehouse.yaml')
    writeFileSync(file, text)
    const res = spawnSync(process.execPath, [BIN, 'check-config', file], { env: { PATH: process.env.PATH ?? '', ...env }, encoding: 'utf8', timeout: 30_000 })
    return { status: res.status, out: `${res.stdout}${res.stderr}` }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

// Hex, like the values docs/deployment.md generates with `openssl rand -hex 32`.
const fakeSecret = (_name: string, key: string) => Buffer.from(key).toString('hex')

function gatewayConfig(objs: K8sObject[]): { text: string; env: Record<string, string>; mountPath: string } {
  const t = templateOf(objs, 'Deployment', 'gatehouse')
  const c = t.spec.containers[0]!
  const vol = t.spec.volumes!.find((v) => v.name === 'config')!.configMap as { name: string }
  const cm = find(objs, 'ConfigMap', vol.name).data as Record<string, string>
  assert.ok(cm['gatehouse.yaml'], `ConfigMap ${vol.name} has no gatehouse.yaml`)
  const mountPath = c.volumeMounts!.find((m) => m.name === 'config')!.mountPath
  return { text: cm['gatehouse.yaml'], env: containerEnv(c, fakeSecret), mountPath }
}

for (const overlay of OVERLAYS) {
  describe(`${overlay}: gatehouse.yaml in the ConfigMap`, () => {
    const objs = renderOverlay(overlay)
    const { text, env, mountPath } = gatewayConfig(objs)
    const cfg = parse(text)

    it('passes gatehouse check-config with the Deployment\'s environment', () => {
      const res = checkConfig(text, env)
      assert.equal(res.status, 0, res.out)
      assert.match(res.out, /valid/)
    })

    it('fails check-config without REDIS_URL: the config really takes Redis from the environment', () => {
      const { REDIS_URL: _gone, ...rest } = env
      const res = checkConfig(text, rest)
      assert.equal(res.status, 2, res.out)
      assert.match(res.out, /store\.redis/)
    })

    it('is the file GATEHOUSE_CONFIG names', () => {
      assert.equal(env.GATEHOUSE_CONFIG, `${mountPath}/gatehouse.yaml`)
    })

    it('listens where the container ports and probes are', () => {
      const c = templateOf(objs, 'Deployment', 'gatehouse').spec.containers[0]!
      assert.equal(c.ports!.find((p) => p.name === 'http')!.containerPort, cfg.listen.port)
      assert.equal(c.ports!.find((p) => p.name === 'metrics')!.containerPort, cfg.metrics.port)
    })

    it('uses the in-cluster Redis, with the password Redis requires', () => {
      assert.equal(cfg.store.redis, '${REDIS_URL}')
      const url = new URL(env.REDIS_URL!)
      const svc = find(objs, 'Service', url.hostname).spec as any
      assert.equal(svc.ports[0].port, Number(url.port))
      const redis = templateOf(objs, 'StatefulSet', 'redis').spec.containers[0]!
      assert.equal(decodeURIComponent(url.password), containerEnv(redis, fakeSecret).REDIS_PASSWORD)
    })

    it('resolves the vLLM headless Service by its cluster DNS name, with the key vLLM requires', () => {
      const up = cfg.upstreams['vllm-mistral']
      assert.equal(up.kind, 'vllm')
      const [svcName, ns, ...rest] = (up.dns.name as string).split('.')
      assert.deepEqual(rest, ['svc', 'cluster', 'local'])
      const svc = find(objs, 'Service', svcName!)
      assert.equal(svc.metadata.namespace, ns)
      assert.equal((svc.spec as any).clusterIP, 'None')
      assert.equal((svc.spec as any).ports[0].port, up.dns.port)
      assert.equal(up.apiKey, '${VLLM_API_KEY}')
      const vllm = templateOf(objs, 'Deployment', 'vllm-mistral').spec.containers[0]!
      assert.equal(containerEnv(vllm, fakeSecret).VLLM_API_KEY, env.VLLM_API_KEY)
      assert.ok(vllm.args!.includes(`--model=${cfg.models['mistral-7b-instruct'].upstreamModel}`), 'upstreamModel is the path vLLM serves')
    })

    it('reaches Ollama through its Service', () => {
      const up = cfg.upstreams.ollama
      assert.equal(up.kind, 'ollama')
      const target = new URL(up.targets[0])
      const [svcName, ns] = target.hostname.split('.')
      const svc = find(objs, 'Service', svcName!)
      assert.equal(svc.metadata.namespace, ns)
      assert.equal((svc.spec as any).ports[0].port, Number(target.port))
      assert.equal(cfg.models['llama3.2'].upstream, 'ollama')
    })

    it('keeps its data and audit where the pod can write', () => {
      const c = templateOf(objs, 'Deployment', 'gatehouse').spec.containers[0]!
      const writable = c.volumeMounts!.filter((m) => !m.readOnly).map((m) => m.mountPath)
      assert.ok(writable.includes(cfg.store.dataDir), `dataDir ${cfg.store.dataDir} is not on a writable volume`)
      if (cfg.audit.sink === 'file') assert.ok(writable.some((p) => cfg.audit.path.startsWith(`${p}/`)))
      else assert.equal(cfg.audit.sink, 'stdout')
    })
  })
}

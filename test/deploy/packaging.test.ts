// The Dockerfile and the compose setup, checked without a Docker engine: what they copy exists
// and is not ignored, the runtime stage is slim, non-root and health-checked, and compose's
// files, networks, GPU reservation and gateway config hang together.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { parse } from 'yaml'
import { BIN, GATEWAY_NODE_FLAGS, ROOT } from '../helpers/processes.js'

interface Instruction {
  op: string
  args: string
}

/** Dockerfile instructions, with continuation lines joined and comments dropped. */
function dockerfile(): Instruction[] {
  const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ')
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const [op, ...rest] = l.split(/\s+/)
      return { op: op!.toUpperCase(), args: rest.join(' ') }
    })
}

function stages(ins: Instruction[]): Instruction[][] {
  const out: Instruction[][] = []
  for (const i of ins) {
    if (i.op === 'FROM') out.push([])
    out.at(-1)?.push(i)
  }
  return out
}

const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'))

describe('Dockerfile', () => {
  const ins = dockerfile()
  const [build, runtime] = stages(ins)

  it('has a build stage and a runtime stage on node:20-bookworm-slim', () => {
    assert.equal(stages(ins).length, 2)
    assert.match(ins.find((i) => i.op === 'ARG')!.args, /^NODE_IMAGE=node:20-bookworm-slim$/)
    assert.match(build![0]!.args, /^\$\{NODE_IMAGE\} AS build$/)
    assert.match(runtime![0]!.args, /^\$\{NODE_IMAGE\} AS runtime$/)
  })

  it('builds with npm ci and npm run build, which is tsc into dist/src', () => {
    const runs = build!.filter((i) => i.op === 'RUN').map((i) => i.args)
    assert.ok(runs.some((r) => r.startsWith('npm ci')))
    assert.ok(runs.includes('npm run build'))
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'))
    assert.match(pkg.scripts.build, /^tsc -p tsconfig.json$/)
    assert.match(readFileSync(BIN, 'utf8'), /from '\.\.\/dist\/src\/cli\/main\.js'/)
  })

  it('installs production dependencies only in the runtime stage, and copies dist/src and bin', () => {
    const runs = runtime!.filter((i) => i.op === 'RUN').map((i) => i.args)
    assert.ok(runs.some((r) => /npm ci --omit=dev --ignore-scripts/.test(r)))
    const copies = runtime!.filter((i) => i.op === 'COPY').map((i) => i.args)
    assert.ok(copies.includes('--from=build /app/dist/src ./dist/src'))
    assert.ok(copies.includes('bin ./bin'))
  })

  it('copies only files that exist and that .dockerignore lets through', () => {
    for (const c of ins.filter((i) => i.op === 'COPY' && !i.args.startsWith('--from'))) {
      const sources = c.args.split(/\s+/).slice(0, -1)
      for (const s of sources) {
        assert.ok(existsSync(join(ROOT, s)), `COPY ${s}: missing`)
        assert.ok(!ignored.includes(s), `COPY ${s}: excluded by .dockerignore`)
      }
    }
  })

  it('runs as a numeric non-root user, checks /healthz with node, starts with npm start', () => {
    const user = runtime!.filter((i) => i.op === 'USER').at(-1)?.args
    assert.match(user ?? '', /^[1-9]\d*(:\d+)?$/)
    const hc = runtime!.find((i) => i.op === 'HEALTHCHECK')?.args ?? ''
    assert.match(hc, /CMD \["node", "-e", .*\/healthz/)
    assert.equal(runtime!.at(-1)!.op, 'CMD')
    // The image, the manifests, npm start and the tests run the gateway with the same flags.
    assert.equal(runtime!.at(-1)!.args, JSON.stringify(['node', ...GATEWAY_NODE_FLAGS, 'bin/gatehouse.js', 'serve']).replaceAll(',', ', '))
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'))
    assert.equal(pkg.scripts.start, ['node', ...GATEWAY_NODE_FLAGS, 'bin/gatehouse.js', 'serve'].join(' '))
    assert.equal(readFileSync(join(ROOT, 'bin', 'gatehouse.js'), 'utf8').split('\n')[0], `#!/usr/bin/env -S node ${GATEWAY_NODE_FLAGS.join(' ')}`)
  })

  it('.dockerignore keeps dependencies, build output, VCS data and secrets out of the context', () => {
    for (const p of ['node_modules', 'dist', '.git', '.env']) assert.ok(ignored.includes(p), p)
  })
})

describe('deploy/compose.yaml', () => {
  const dir = join(ROOT, 'deploy')
  const compose = parse(readFileSync(join(dir, 'compose.yaml'), 'utf8')) as { services: Record<string, any>; networks: Record<string, any>; volumes: Record<string, unknown> }
  const svc = compose.services

  it('runs the gateway, Redis, vLLM, Prometheus and Grafana', () => {
    for (const s of ['gateway', 'redis', 'vllm', 'prometheus', 'grafana']) assert.ok(svc[s], s)
  })

  it('mounts files and named volumes that exist', () => {
    for (const [name, s] of Object.entries(svc)) {
      for (const v of (s.volumes ?? []) as string[]) {
        const src = v.split(':')[0]!
        if (src.startsWith('.')) assert.ok(existsSync(resolve(dir, src)), `${name}: ${src}`)
        else assert.ok(src in compose.volumes, `${name}: volume ${src}`)
      }
      for (const n of (s.networks ?? []) as string[]) assert.ok(n in compose.networks, `${name}: network ${n}`)
    }
  })

  it('Redis keeps an append-only file on a volume', () => {
    const cmd = (svc.redis.command as string[]).join(' ')
    assert.match(cmd, /--appendonly yes/)
    assert.ok((svc.redis.volumes as string[]).some((v) => v.endsWith(':/data')))
  })

  it('vLLM reserves an NVIDIA GPU and sits only on the internal network', () => {
    const dev = svc.vllm.deploy.resources.reservations.devices[0]
    assert.equal(dev.driver, 'nvidia')
    assert.deepEqual(dev.capabilities, ['gpu'])
    assert.deepEqual(svc.vllm.networks, ['backend'])
    assert.deepEqual(svc.redis.networks, ['backend'])
    assert.equal(compose.networks.backend.internal, true)
  })

  it('Prometheus scrapes the gateway metrics port and vLLM, as configured in deploy/gatehouse.yaml and the vLLM command', () => {
    const prom = parse(readFileSync(join(dir, 'prometheus', 'prometheus.yml'), 'utf8'))
    const targets = prom.scrape_configs.flatMap((s: any) => s.static_configs.flatMap((c: any) => c.targets))
    const gw = parse(readFileSync(join(dir, 'gatehouse.yaml'), 'utf8'))
    assert.ok(targets.includes(`gateway:${gw.metrics.port}`))
    const port = (svc.vllm.command as string[]).find((a) => a.startsWith('--port='))!.split('=')[1]
    assert.ok(targets.includes(`vllm:${port}`))
    assert.ok(gw.upstreams['vllm-mistral'].targets.includes(`http://vllm:${port}`))
  })

  it('Grafana provisions the Prometheus datasource and the dashboards directory', () => {
    const ds = parse(readFileSync(join(dir, 'grafana', 'provisioning', 'datasources', 'prometheus.yaml'), 'utf8'))
    assert.equal(ds.datasources[0].type, 'prometheus')
    assert.equal(ds.datasources[0].url, 'http://prometheus:9090')
    const prov = parse(readFileSync(join(dir, 'grafana', 'provisioning', 'dashboards', 'gatehouse.yaml'), 'utf8'))
    const mount = (svc.grafana.volumes as string[]).find((v) => v.startsWith('../dashboards:'))!
    assert.equal(mount.split(':')[1], prov.providers[0].options.path)
  })

  it('deploy/gatehouse.yaml passes check-config with the environment compose gives the gateway', () => {
    const env: Record<string, string> = { PATH: process.env.PATH ?? '' }
    for (const [k, v] of Object.entries(svc.gateway.environment as Record<string, string>)) {
      // compose's ${VAR:?message} / ${VAR}: the values deploy/.env would supply.
      env[k] = v.replace(/\$\{(\w+)(:\?[^}]*)?\}/g, (_m, name: string) => Buffer.from(name).toString('hex'))
    }
    const res = spawnSync(process.execPath, [BIN, 'check-config', join(dir, 'gatehouse.yaml')], { env, encoding: 'utf8', timeout: 30_000 })
    assert.equal(res.status, 0, `${res.stdout}${res.stderr}`)
  })
})

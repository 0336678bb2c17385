// The model download script, as rendered into its ConfigMap, run for real with stand-ins for
// aws / gcloud / python3 that copy from a local "bucket": it fills the volume once, skips a
// complete model, never leaves half a model in place, and resumes an interrupted copy.
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { find, renderOverlay } from './kustomize.js'

let dir = ''
let script = ''
let bucket = ''
let models = ''
let calls = ''

// One stand-in for all three tools: it logs its arguments and copies $FAKE_BUCKET into its
// last argument (aws s3 sync SRC DEST, gcloud storage rsync SRC DEST, python3 - DEST).
const FAKE_TOOL = `#!/bin/sh
echo "$(basename "$0") $*" >> "$FAKE_CALLS"
for last in "$@"; do :; done
[ "$(basename "$0")" = python3 ] && cat > /dev/null
cp -R "$FAKE_BUCKET/." "$last"
`

function run(env: Record<string, string>): { status: number | null; out: string } {
  const res = spawnSync('sh', [script], {
    env: { PATH: `${join(dir, 'bin')}:${process.env.PATH}`, MODELS_DIR: models, MODEL_NAME: 'tiny', FAKE_BUCKET: bucket, FAKE_CALLS: calls, ...env },
    encoding: 'utf8',
    timeout: 30_000,
  })
  return { status: res.status, out: `${res.stdout}${res.stderr}` }
}

const callCount = () => (existsSync(calls) ? readFileSync(calls, 'utf8').trim().split('\n').length : 0)

describe('model-download.sh', () => {
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-download-'))
    const cm = find(renderOverlay('generic'), 'ConfigMap', 'model-download-script')
    script = join(dir, 'model-download.sh')
    writeFileSync(script, (cm.data as Record<string, string>)['model-download.sh']!)
    mkdirSync(join(dir, 'bin'))
    for (const tool of ['aws', 'gcloud', 'python3']) {
      writeFileSync(join(dir, 'bin', tool), FAKE_TOOL)
      chmodSync(join(dir, 'bin', tool), 0o755)
    }
    bucket = join(dir, 'bucket')
    mkdirSync(bucket)
    writeFileSync(join(bucket, 'config.json'), '{"architectures": ["MistralForCausalLM"]}')
    writeFileSync(join(bucket, 'model.safetensors'), 'weights')
  })
  after(() => rmSync(dir, { recursive: true, force: true }))

  for (const [source, extra] of [
    ['s3', { S3_URI: 's3://bucket/tiny/' }],
    ['gcs', { GCS_URI: 'gs://bucket/tiny' }],
    ['hf', { HF_MODEL_ID: 'org/tiny' }],
  ] as const) {
    it(`${source}: fills the volume once, then skips it`, () => {
      models = join(dir, `models-${source}`)
      calls = join(dir, `calls-${source}`)
      mkdirSync(models)
      const first = run({ MODEL_SOURCE: source, ...extra })
      assert.equal(first.status, 0, first.out)
      assert.equal(readFileSync(join(models, 'tiny', 'model.safetensors'), 'utf8'), 'weights')
      assert.ok(existsSync(join(models, 'tiny', '.gatehouse-complete')))
      assert.ok(!existsSync(join(models, 'tiny.partial')))
      assert.equal(callCount(), 1)
      const second = run({ MODEL_SOURCE: source, ...extra })
      assert.equal(second.status, 0, second.out)
      assert.match(second.out, /nothing to do/)
      assert.equal(callCount(), 1, 'the second run must not fetch again')
    })
  }

  it('an empty source fails and leaves no model that looks complete', () => {
    models = join(dir, 'models-empty')
    calls = join(dir, 'calls-empty')
    mkdirSync(models)
    const empty = join(dir, 'empty-bucket')
    mkdirSync(empty)
    const res = run({ MODEL_SOURCE: 's3', S3_URI: 's3://empty/', FAKE_BUCKET: empty })
    assert.equal(res.status, 1, res.out)
    assert.match(res.out, /no config\.json/)
    assert.ok(!existsSync(join(models, 'tiny')))
  })

  it('replaces an incomplete model left by an interrupted run', () => {
    models = join(dir, 'models-resume')
    calls = join(dir, 'calls-resume')
    mkdirSync(join(models, 'tiny'), { recursive: true })
    writeFileSync(join(models, 'tiny', 'stale.bin'), 'half')
    mkdirSync(join(models, 'tiny.partial'))
    writeFileSync(join(models, 'tiny.partial', 'model.safetensors'), 'wei')
    const res = run({ MODEL_SOURCE: 's3', S3_URI: 's3://bucket/tiny/' })
    assert.equal(res.status, 0, res.out)
    assert.ok(!existsSync(join(models, 'tiny', 'stale.bin')))
    assert.equal(readFileSync(join(models, 'tiny', 'model.safetensors'), 'utf8'), 'weights')
  })

  it('refuses an unknown source', () => {
    models = join(dir, 'models-bad')
    mkdirSync(models)
    const res = run({ MODEL_SOURCE: 'ftp' })
    assert.equal(res.status, 2, res.out)
  })
})

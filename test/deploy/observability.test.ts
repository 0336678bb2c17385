// Alerts and dashboards without a running Prometheus: promtool checks and unit-tests the
// rules; every panel query parses; dashboards use only the SPEC's and vLLM's metrics, with
// labels those metrics have, through a Prometheus datasource variable.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { ROOT } from '../helpers/processes.js'
import { METRICS, TARGET_LABELS, alertRules, concrete, dashboards, family, metricNames, panelQueries, promtoolParses, run } from './promql.js'

const PROM = join(ROOT, 'deploy', 'prometheus')

describe('alert rules', () => {
  it('pass promtool check rules', () => {
    const res = run('promtool', ['check', 'rules', join(PROM, 'alerts.yaml')])
    assert.equal(res.status, 0, res.out)
    assert.match(res.out, /SUCCESS: \d+ rules found/)
  })

  it('pass their unit tests (promtool test rules alerts.test.yaml)', () => {
    const res = run('promtool', ['test', 'rules', join(PROM, 'alerts.test.yaml')])
    assert.equal(res.status, 0, res.out)
  })

  it('cover error rate, latency, upstream down, audit write errors and quota saturation', () => {
    const names = alertRules().map((r) => r.alert)
    for (const a of ['GatehouseHighErrorRate', 'GatehouseHighLatency', 'GatehouseUpstreamDown', 'GatehouseAuditWriteErrors', 'GatehouseQuotaSaturation']) {
      assert.ok(names.includes(a), a)
    }
  })

  it('use only known metric names', () => {
    for (const r of alertRules()) for (const m of metricNames(r.expr)) assert.ok(METRICS[family(m)], `${r.alert}: ${m}`)
  })

  it('the compose Prometheus config is valid and loads them', () => {
    const res = run('promtool', ['check', 'config', join(PROM, 'prometheus.yml')])
    assert.equal(res.status, 0, res.out)
    assert.match(res.out, /SUCCESS: 1 rule files found/)
  })
})

describe('dashboards', () => {
  const all = dashboards()

  it('are the usage, latency and upstreams dashboards, with unique uids', () => {
    assert.deepEqual(all.map((d) => d.json.uid).sort(), ['gatehouse-latency', 'gatehouse-upstreams', 'gatehouse-usage'])
  })

  it('have a Prometheus datasource variable that every panel and target uses', () => {
    for (const { file, json } of all) {
      const ds = json.templating.list.find((v) => v.type === 'datasource')
      assert.ok(ds, `${file}: no datasource variable`)
      assert.equal(ds.query, 'prometheus')
      for (const p of json.panels) {
        assert.equal(p.datasource?.uid, `\${${ds.name}}`, `${file} ${p.title}`)
        for (const t of p.targets ?? []) assert.equal(t.datasource?.uid, `\${${ds.name}}`, `${file} ${p.title} ${t.refId}`)
      }
    }
  })

  it('lay panels out on the 24-column grid with unique ids and at least one query each', () => {
    for (const { file, json } of all) {
      const ids = json.panels.map((p) => p.id)
      assert.equal(new Set(ids).size, ids.length, `${file}: duplicate panel ids`)
      for (const p of json.panels) {
        assert.ok(p.gridPos.x >= 0 && p.gridPos.w > 0 && p.gridPos.x + p.gridPos.w <= 24, `${file} ${p.title}`)
        assert.ok((p.targets ?? []).length > 0, `${file} ${p.title}: no query`)
      }
    }
  })

  it('show what the issue asks for', () => {
    const exprs = panelQueries().map((q) => q.expr).join('\n')
    for (const m of Object.keys(METRICS)) assert.ok(exprs.includes(m), `no panel uses ${m}`)
    assert.match(exprs, /histogram_quantile\(0\.95, sum by \(le\) \(rate\(gatehouse_request_duration_seconds_bucket/)
    assert.match(exprs, /histogram_quantile\(0\.95, sum by \(le\) \(rate\(gatehouse_time_to_first_token_seconds_bucket/)
  })

  it('use only known metrics, filtered and grouped by labels those metrics have', () => {
    for (const q of panelQueries()) {
      const families = metricNames(q.expr).map(family)
      for (const f of families) assert.ok(METRICS[f], `${q.dashboard} / ${q.panel}: unknown metric ${f}`)
      const allowed = new Set([...families.flatMap((f) => METRICS[f]!), ...TARGET_LABELS])
      const used = [
        ...[...q.expr.matchAll(/\{([^}]*)\}/g)].flatMap((m) => [...m[1]!.matchAll(/([a-z_]+)\s*[=!]~?/g)].map((x) => x[1]!)),
        ...[...q.expr.matchAll(/\bby \(([^)]*)\)/g)].flatMap((m) => m[1]!.split(',').map((s) => s.trim())),
      ]
      for (const l of used) assert.ok(allowed.has(l), `${q.dashboard} / ${q.panel}: label ${l} is not on ${families.join(', ')}`)
    }
  })

  it('variables list label values of known metrics', () => {
    for (const { file, json } of all) {
      for (const v of json.templating.list.filter((x) => x.type === 'query')) {
        const m = /^label_values\(([^,]+), (\w+)\)$/.exec(String(v.query))
        assert.ok(m, `${file} $${v.name}: ${String(v.query)}`)
        assert.ok(METRICS[family(m[1]!)]?.includes(m[2]!), `${file} $${v.name}: ${m[1]} has no label ${m[2]}`)
        assert.equal(v.allValue, '.*', `${file} $${v.name}: "All" must match series without the label too`)
      }
    }
  })

  it('every panel query parses (promtool check rules on a rules file of them)', () => {
    const exprs = panelQueries().map((q) => concrete(q.expr))
    const res = promtoolParses(exprs)
    assert.equal(res.status, 0, res.out)
    assert.match(res.out, new RegExp(`SUCCESS: ${exprs.length} rules found`))
  })

  it('a broken query would be caught by that check', () => {
    const res = promtoolParses(['sum by (model (rate(gatehouse_requests_total[5m]))'])
    assert.notEqual(res.status, 0)
  })
})

import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse } from 'yaml'
import { ROOT } from '../helpers/processes.js'

/** The metric families the dashboards and alerts may use, with their labels (SPEC section 6, vLLM). */
export const METRICS: Record<string, string[]> = {
  gatehouse_requests_total: ['route', 'model', 'role', 'status'],
  gatehouse_request_duration_seconds: ['route', 'model'],
  gatehouse_time_to_first_token_seconds: ['model'],
  gatehouse_tokens_total: ['model', 'role', 'type'],
  gatehouse_rate_limited_total: ['role', 'limit'],
  gatehouse_auth_failures_total: ['reason'],
  gatehouse_upstream_in_flight: ['upstream', 'replica'],
  gatehouse_upstream_healthy: ['upstream', 'replica'],
  gatehouse_audit_write_errors_total: [],
  'vllm:num_requests_waiting': ['model_name', 'engine'],
  'vllm:num_requests_running': ['model_name', 'engine'],
  'vllm:kv_cache_usage_perc': ['model_name', 'engine'],
  'vllm:gpu_cache_usage_perc': ['model_name', 'engine'],
}
export const HISTOGRAMS = ['gatehouse_request_duration_seconds', 'gatehouse_time_to_first_token_seconds']
/** Labels every scraped series may carry, whatever the metric (Prometheus' own and Kubernetes SD's). */
export const TARGET_LABELS = ['job', 'instance', 'pod', 'namespace', 'le']

export interface PanelQuery {
  dashboard: string
  panel: string
  expr: string
}

export interface Dashboard {
  uid: string
  title: string
  panels: { id: number; type: string; title: string; datasource?: { uid: string }; gridPos: { x: number; y: number; w: number; h: number }; targets?: { refId: string; expr: string; datasource?: { uid: string } }[] }[]
  templating: { list: { name: string; type: string; query: unknown; definition?: string; allValue?: string }[] }
}

export function dashboards(): { file: string; json: Dashboard }[] {
  const dir = join(ROOT, 'dashboards')
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((file) => ({ file, json: JSON.parse(readFileSync(join(dir, file), 'utf8')) as Dashboard }))
}

/** Every panel target's PromQL, as written in the dashboards (Grafana variables unreplaced). */
export function panelQueries(): PanelQuery[] {
  return dashboards().flatMap(({ json }) =>
    json.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ dashboard: json.uid, panel: `${p.title} ${t.refId}`, expr: t.expr }))),
  )
}

/** Grafana variables replaced the way Grafana does with "All" selected, and the range macros. */
export function concrete(expr: string, rateInterval = '5m', range = '1h'): string {
  return expr
    .replaceAll('$__rate_interval', rateInterval)
    .replaceAll('$__range', range)
    .replace(/\$(model|role|upstream)\b/g, '.*')
}

export function alertRules(): { alert: string; expr: string }[] {
  const doc = parse(readFileSync(join(ROOT, 'deploy', 'prometheus', 'alerts.yaml'), 'utf8')) as { groups: { rules: { alert: string; expr: string }[] }[] }
  return doc.groups.flatMap((g) => g.rules)
}

/** Metric names an expression uses (identifiers in metric-name position). */
export function metricNames(expr: string): string[] {
  const noStrings = expr.replace(/"[^"]*"/g, '""')
  const names = noStrings.match(/\b(gatehouse_[a-z_]+|vllm:[a-z_:]+)/g) ?? []
  return [...new Set(names)]
}

/** The family a series name belongs to (histogram suffixes stripped). */
export function family(name: string): string {
  for (const h of HISTOGRAMS) if (name === `${h}_bucket` || name === `${h}_sum` || name === `${h}_count`) return h
  return name
}

/** Runs a command, bounded; returns its status and combined output. */
export function run(cmd: string, args: string[], timeout = 60_000): { status: number | null; out: string } {
  const res = spawnSync(cmd, args, { encoding: 'utf8', timeout })
  if (res.error) throw new Error(`${cmd}: ${res.error.message} (promtool comes with Debian's prometheus package: apt-get install prometheus)`)
  return { status: res.status, out: `${res.stdout}${res.stderr}` }
}

/**
 * Checks that each expression parses, with `promtool check rules` on a generated rules file
 * holding one recording rule per expression. Returns promtool's result.
 */
export function promtoolParses(exprs: string[]): { status: number | null; out: string } {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-promql-'))
  try {
    const rules = { groups: [{ name: 'panels', rules: exprs.map((expr, i) => ({ record: `gatehouse_test:expr_${i}`, expr })) }] }
    const file = join(dir, 'rules.yaml')
    writeFileSync(file, JSON.stringify(rules))
    return run('promtool', ['check', 'rules', file])
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

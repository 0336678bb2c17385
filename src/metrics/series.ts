// The per-request metrics, kept outside prom-client. A prom-client child hashes its label
// object again on every inc() or observe(); here a series is found once per label set and
// recording is an addition. They are rendered in Prometheus' text format next to the
// registry's own output (process defaults, upstream gauges, audit counters).

/** One metric family the gateway keeps itself: rendered at scrape time. */
export interface Family {
  render(): string
}

/** Prometheus text escaping of a label value: backslash, double quote, newline. */
function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
}

function labelText(names: readonly string[], values: readonly string[]): string {
  return names.map((n, i) => `${n}="${escapeLabelValue(values[i])}"`).join(',')
}

function header(name: string, help: string, type: string): string {
  return `# HELP ${name} ${help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}\n# TYPE ${name} ${type}\n`
}

/** `{labels}`, or nothing for a series without labels. */
function braces(labels: string): string {
  return labels === '' ? '' : `{${labels}}`
}

/** Number formatting as prom-client's (Prometheus reads both). */
function num(value: number): string {
  if (Number.isNaN(value)) return 'NaN'
  if (!Number.isFinite(value)) return value < 0 ? '-Inf' : '+Inf'
  return String(value)
}

export class CounterSeries {
  value = 0
  constructor(readonly labels: string) {}
  inc(by = 1): void {
    this.value += by
  }
}

/** Series by label values (in labelNames order), each made on first use. */
abstract class LabelledFamily<S> implements Family {
  protected readonly all = new Map<string, S>()
  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {}

  get(values: readonly string[]): S {
    const key = values.join('\u0000')
    let s = this.all.get(key)
    if (s === undefined) {
      s = this.make(labelText(this.labelNames, values))
      this.all.set(key, s)
    }
    return s
  }

  protected abstract make(labels: string): S
  abstract render(): string
}

/** A counter with labels; label values are bounded by the caller (unknown ones folded). */
export class CounterFamily extends LabelledFamily<CounterSeries> {
  protected make(labels: string): CounterSeries {
    return new CounterSeries(labels)
  }

  render(): string {
    let out = header(this.name, this.help, 'counter')
    for (const s of this.all.values()) out += `${this.name}${braces(s.labels)} ${num(s.value)}\n`
    return out
  }
}

export class HistogramSeries {
  /** Observations per bucket (not cumulative), one more than the bounds for +Inf. */
  readonly counts: Float64Array
  sum = 0
  count = 0
  constructor(
    readonly labels: string,
    private readonly bounds: readonly number[],
  ) {
    this.counts = new Float64Array(bounds.length + 1)
  }

  observe(value: number): void {
    const b = this.bounds
    let i = 0
    // `le` is inclusive: a value equal to a bound is in that bound's bucket.
    while (i < b.length && value > b[i]) i++
    this.counts[i]++
    this.sum += value
    this.count++
  }
}

/** A histogram with labels and fixed bucket bounds (ascending). */
export class HistogramFamily extends LabelledFamily<HistogramSeries> {
  constructor(name: string, help: string, labelNames: readonly string[], readonly bounds: readonly number[]) {
    super(name, help, labelNames)
  }

  protected make(labels: string): HistogramSeries {
    return new HistogramSeries(labels, this.bounds)
  }

  render(): string {
    let out = header(this.name, this.help, 'histogram')
    for (const s of this.all.values()) {
      const sep = s.labels === '' ? '' : ','
      let cumulative = 0
      for (let i = 0; i < this.bounds.length; i++) {
        cumulative += s.counts[i]
        out += `${this.name}_bucket{${s.labels}${sep}le="${num(this.bounds[i])}"} ${cumulative}\n`
      }
      out += `${this.name}_bucket{${s.labels}${sep}le="+Inf"} ${s.count}\n`
      out += `${this.name}_sum${braces(s.labels)} ${num(s.sum)}\n`
      out += `${this.name}_count${braces(s.labels)} ${s.count}\n`
    }
    return out
  }
}

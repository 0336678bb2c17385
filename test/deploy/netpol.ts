// Evaluates Kubernetes NetworkPolicies the way the API defines them, to check what the
// rendered policies really allow between the rendered pods (and pods and hosts outside).
// A connection is allowed when the source's egress AND the destination's ingress allow it;
// a pod no policy of that direction selects is open in that direction.
import { podTemplates, selects, type K8sObject } from './kustomize.js'

type Labels = Record<string, string>
type Selector = Parameters<typeof selects>[0]

/** One end of a connection: a pod (with its namespace's labels) or an address outside. */
export type Endpoint =
  | { name: string; pod: true; namespace: string; nsLabels: Labels; labels: Labels; ip: string; ports: { name?: string; containerPort: number; protocol?: string }[] }
  | { name: string; pod: false; ip: string }

interface Peer {
  podSelector?: Selector
  namespaceSelector?: Selector
  ipBlock?: { cidr: string; except?: string[] }
}
interface Rule {
  from?: Peer[]
  to?: Peer[]
  ports?: { protocol?: string; port?: number | string; endPort?: number }[]
}
interface Policy {
  namespace: string
  podSelector: Selector
  types: string[]
  ingress: Rule[]
  egress: Rule[]
}

function ipv4(ip: string): number {
  return ip.split('.').reduce((n, part) => n * 256 + Number(part), 0)
}

function inCidr(ip: string, cidr: string): boolean {
  const [base, bits] = cidr.split('/') as [string, string]
  const size = 2 ** (32 - Number(bits))
  return Math.floor(ipv4(ip) / size) === Math.floor(ipv4(base) / size)
}

/** The pods of a render, in `namespace` (whose labels Kubernetes sets), with made-up IPs. */
export function podsOf(objs: K8sObject[], namespace = 'llm'): Endpoint[] {
  return podTemplates(objs).map((t, i) => ({
    name: `${t.owner.metadata.name}${t.role === 'template' ? '' : `-${t.role}`}`,
    pod: true as const,
    namespace: t.owner.metadata.namespace ?? namespace,
    nsLabels: { 'kubernetes.io/metadata.name': t.owner.metadata.namespace ?? namespace },
    labels: t.metadata.labels ?? {},
    // Pod IPs lie inside 0.0.0.0/0, so ipBlock rules are taken to match pods too: the worst
    // case, since whether a CNI applies ipBlock to pod IPs is left open by the API.
    ip: `10.244.0.${i + 10}`,
    ports: [...(t.spec.initContainers ?? []), ...t.spec.containers].flatMap((c) => c.ports ?? []),
  }))
}

/** A pod outside the render: `namespace` with `nsLabels` (its name label is added). */
export function outsidePod(name: string, namespace: string, labels: Labels, nsLabels: Labels = {}, ip = '10.244.9.9'): Endpoint {
  return { name, pod: true, namespace, nsLabels: { 'kubernetes.io/metadata.name': namespace, ...nsLabels }, labels, ip, ports: [] }
}

export function host(name: string, ip: string): Endpoint {
  return { name, pod: false, ip }
}

/** The NetworkPolicies of a render. */
export function policiesOf(objs: K8sObject[]): Policy[] {
  return objs
    .filter((o) => o.kind === 'NetworkPolicy')
    .map((o) => {
      const spec = o.spec as { podSelector: Selector; policyTypes?: string[]; ingress?: Rule[]; egress?: Rule[] }
      // Without policyTypes: Ingress always, Egress when there are egress rules (API default).
      const types = spec.policyTypes ?? ['Ingress', ...(spec.egress ? ['Egress'] : [])]
      return { namespace: o.metadata.namespace!, podSelector: spec.podSelector, types, ingress: spec.ingress ?? [], egress: spec.egress ?? [] }
    })
}

function peerMatches(peer: Peer, policyNs: string, other: Endpoint): boolean {
  if (peer.ipBlock) {
    return inCidr(other.ip, peer.ipBlock.cidr) && !(peer.ipBlock.except ?? []).some((c) => inCidr(other.ip, c))
  }
  if (!other.pod) return false
  const nsOk = peer.namespaceSelector ? selects(peer.namespaceSelector, other.nsLabels) : other.namespace === policyNs
  const podOk = peer.podSelector ? selects(peer.podSelector, other.labels) : true
  return nsOk && podOk
}

function portMatches(rule: Rule, dst: Endpoint, port: number, protocol: string): boolean {
  if (!rule.ports || rule.ports.length === 0) return true
  return rule.ports.some((p) => {
    if ((p.protocol ?? 'TCP') !== protocol) return false
    if (p.port === undefined) return true
    if (typeof p.port === 'string') {
      return dst.pod && dst.ports.some((cp) => cp.name === p.port && cp.containerPort === port && (cp.protocol ?? 'TCP') === protocol)
    }
    return p.endPort ? port >= p.port && port <= p.endPort : port === p.port
  })
}

function selectedBy(policies: Policy[], ep: Endpoint, type: 'Ingress' | 'Egress'): Policy[] {
  if (!ep.pod) return []
  return policies.filter((p) => p.types.includes(type) && p.namespace === ep.namespace && selects(p.podSelector, ep.labels))
}

/** Would a TCP/UDP connection from `src` to `dst` on `port` be allowed? */
export function allowed(policies: Policy[], src: Endpoint, dst: Endpoint, port: number, protocol = 'TCP'): boolean {
  const egress = selectedBy(policies, src, 'Egress')
  const egressOk =
    egress.length === 0 ||
    egress.some((p) => p.egress.some((r) => (!r.to || r.to.length === 0 || r.to.some((peer) => peerMatches(peer, p.namespace, dst))) && portMatches(r, dst, port, protocol)))
  if (!egressOk) return false
  const ingress = selectedBy(policies, dst, 'Ingress')
  return (
    ingress.length === 0 ||
    ingress.some((p) => p.ingress.some((r) => (!r.from || r.from.length === 0 || r.from.some((peer) => peerMatches(peer, p.namespace, src))) && portMatches(r, dst, port, protocol)))
  )
}

/** Is the pod selected by policies of both directions (so nothing unlisted gets through)? */
export function isolated(policies: Policy[], ep: Endpoint): boolean {
  return selectedBy(policies, ep, 'Ingress').length > 0 && selectedBy(policies, ep, 'Egress').length > 0
}

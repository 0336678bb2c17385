import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { parseConfig } from '../../src/config/index.js'
import { buildRing, pickLeastLoaded, pickReplica, ringLookup, AFFINITY_SLACK } from '../../src/upstream/balancer-pick.js'
import { hash32, KV_WEIGHT, ReplicaState } from '../../src/upstream/replica.js'

const config = parseConfig({ upstreams: { u: { kind: 'vllm', targets: ['http://127.0.0.1:1'] } } }).upstreams.u
const made: ReplicaState[] = []
// Pools are created lazily connected: nothing is contacted in this file.
function replicas(n: number): ReplicaState[] {
  const list = Array.from({ length: n }, (_, i) => new ReplicaState('u', `http://10.0.0.${i + 1}:8000`, config))
  made.push(...list)
  return list
}
after(async () => {
  await Promise.all(made.map((r) => r.dispatcher.close()))
})

test('score = in flight + load reported by the replica that is not ours + KV weight', () => {
  const [r] = replicas(1)
  r.inFlight = 2
  // The replica counts our 2 among its 5 running + 3 waiting: 6 are someone else's.
  r.applyLoad({ running: 5, waiting: 3, kvUsage: 0.5 }, 1)
  assert.equal(r.external, 6)
  assert.equal(r.score(), 2 + 6 + KV_WEIGHT * 0.5)
  // Three more sent before the next scrape count at once, and only once.
  r.inFlight += 3
  assert.equal(r.score(), 5 + 6 + KV_WEIGHT * 0.5)
  // The replica reporting fewer than we have in flight (ours not arrived yet) is not negative.
  r.applyLoad({ running: 1, waiting: 0, kvUsage: null }, 2)
  assert.equal(r.score(), 5)
  r.clearLoad()
  assert.equal(r.score(), 5)
  assert.equal(r.running, null)
})

test('of two replicas the lower score always wins', () => {
  const [a, b] = replicas(2)
  a.inFlight = 3
  b.inFlight = 1
  for (let i = 0; i < 200; i++) assert.equal(pickLeastLoaded([a, b], undefined), b)
  b.applyLoad({ running: 1, waiting: 4, kvUsage: null }, 1)
  for (let i = 0; i < 200; i++) assert.equal(pickLeastLoaded([a, b], undefined), a)
})

test('ties are broken at random', () => {
  const list = replicas(3)
  const seen = new Set<ReplicaState>()
  for (let i = 0; i < 300; i++) seen.add(pickLeastLoaded(list, undefined)!)
  assert.equal(seen.size, 3)
})

test('excluded replicas (already tried) are never picked; all excluded gives null', () => {
  const list = replicas(4)
  list[0].inFlight = 0
  for (const r of list.slice(1)) r.inFlight = 5
  const tried = new Set([list[0], list[2]])
  for (let i = 0; i < 100; i++) {
    const r = pickReplica(list, buildRing(list), tried, i % 2 === 0 ? `key-${i}` : undefined)
    assert.ok(r === list[1] || r === list[3])
  }
  assert.equal(pickLeastLoaded(list, new Set(list)), null)
  assert.equal(pickReplica([], buildRing([]), undefined, 'k'), null)
})

test('the affinity ring is stable, spreads keys, and moves only the keys of a removed replica', () => {
  const list = replicas(4)
  const ring = buildRing(list)
  const owner = new Map<string, ReplicaState>()
  const counts = new Map<ReplicaState, number>()
  for (let i = 0; i < 2000; i++) {
    const key = `conversation-${i}`
    const r = ringLookup(ring, hash32(key), undefined)!
    assert.equal(ringLookup(ring, hash32(key), undefined), r)
    owner.set(key, r)
    counts.set(r, (counts.get(r) ?? 0) + 1)
  }
  for (const r of list) assert.ok((counts.get(r) ?? 0) > 2000 / 4 / 2, `uneven split: ${[...counts.values()]}`)
  const smaller = buildRing(list.slice(1))
  for (const [key, r] of owner) {
    if (r !== list[0]) assert.equal(ringLookup(smaller, hash32(key), undefined), r)
  }
})

test('affinity keeps a conversation on its replica within the bound, not beyond it', () => {
  const list = replicas(2)
  const ring = buildRing(list)
  const key = 'user-7:first message'
  const home = ringLookup(ring, hash32(key), undefined)!
  const other = list[0] === home ? list[1] : list[0]
  home.inFlight = AFFINITY_SLACK
  other.inFlight = 0
  for (let i = 0; i < 50; i++) assert.equal(pickReplica(list, ring, undefined, key), home)
  home.inFlight = AFFINITY_SLACK + 1
  for (let i = 0; i < 50; i++) assert.equal(pickReplica(list, ring, undefined, key), other)
  // Under heavy load the bound grows with the load (50 %): 28 vs 20 stays home.
  home.inFlight = 28
  other.inFlight = 20
  assert.equal(pickReplica(list, ring, undefined, key), home)
  // When home was tried already, the retry goes elsewhere.
  assert.equal(pickReplica(list, ring, new Set([home]), key), other)
})

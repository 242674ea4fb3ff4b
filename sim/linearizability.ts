/**
 * A linearizability checker for a key-value register history, after Wing & Gong (1993) with
 * Lowe's memoization, the algorithm Porcupine uses.
 *
 * The history is split by key (a register store is P-compositional: the whole history is
 * linearizable iff each key's sub-history is), then each sub-history is searched depth-first:
 * repeatedly pick an operation whose call precedes every pending return, apply it to the model,
 * and backtrack when a return is reached before its operation was linearized. A cache of
 * (set of linearized operations, model state) prunes states already explored.
 *
 * Operations that never returned (a client timed out) get return time +∞: they may take effect
 * at any point after their call, or never, which for a register is the same as at the end.
 *
 * A compare-and-swap (`cas`) whose outcome is known either swapped (the key held `expected`)
 * or was refused and saw `previous` (the key held something else); one whose outcome is
 * unknown swaps if the key holds `expected` where it is placed, and placed last it changes
 * nothing.
 *
 * @module
 */

/** One client operation on a register key. */
export interface KvOperation {
  clientId: number;
  kind: "put" | "get" | "cas";
  key: string;
  /**
   * For put: the value written. For get: the value read (undefined = key absent). For cas: the
   * value written when it swaps.
   */
  value: string | undefined;
  /** For cas: the value the key must hold for the swap (undefined = absent). */
  expected?: string | undefined;
  /** For cas: whether it swapped; undefined when the outcome is unknown (`ret` = ∞). */
  swapped?: boolean;
  /** For a refused cas: the value the store reported instead (undefined = absent). */
  previous?: string | undefined;
  /** Logical time of the call. */
  call: number;
  /** Logical time of the return; `Infinity` if the outcome is unknown. */
  ret: number;
}

/** The checker's verdict. */
export interface LinearizabilityResult {
  ok: boolean;
  /** On failure, the key whose history has no linearization. */
  key?: string;
  /** On failure, that key's operations, one per line, in call order. */
  explanation?: string;
}

interface ListEntry {
  isCall: boolean;
  op: number;
  time: number;
  match: ListEntry | undefined;
  prev: ListEntry | undefined;
  next: ListEntry | undefined;
}

/** Most states the search may visit per key before giving up (reported as a failure). */
export const MAX_SEARCH_STEPS_PER_KEY = 5_000_000;

/** Checks a whole history; returns the first key that is not linearizable. */
export function checkLinearizable(history: readonly KvOperation[]): LinearizabilityResult {
  const byKey = new Map<string, KvOperation[]>();
  for (const op of history) {
    if (op.kind === "get" && op.ret === Infinity) continue; // An unanswered read changes nothing.
    const list = byKey.get(op.key) ?? [];
    list.push(op);
    byKey.set(op.key, list);
  }
  for (const key of [...byKey.keys()].sort()) {
    const ops = byKey.get(key)!;
    if (!checkRegister(ops)) {
      return { ok: false, key, explanation: explainViolation(ops) };
    }
  }
  return { ok: true };
}

/**
 * Narrows a failing history to where it first goes wrong: the earliest return time T such that
 * the history cut at T (operations called by T; those returning later count as pending) has no
 * linearization. Prints the operation returning at T and the operations just before it.
 */
function explainViolation(ops: KvOperation[]): string {
  const times = ops.filter((o) => o.ret !== Infinity).map((o) => o.ret).sort((a, b) => a - b);
  const cut = (t: number): KvOperation[] =>
    ops.filter((o) => o.call <= t && (o.ret <= t || o.kind !== "get"))
      .map((o) => (o.ret <= t ? o : { ...o, ret: Infinity }));
  let lo = 0;
  let hi = times.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (checkRegister(cut(times[mid]!))) lo = mid + 1;
    else hi = mid;
  }
  const t = times[lo] ?? Infinity;
  const culprit = ops.find((o) => o.ret === t);
  const window = cut(t).sort((a, b) => a.call - b.call).slice(-16);
  const head = culprit === undefined
    ? "no linearization of the whole history"
    : `first impossible return at time ${t}: ${describeOps([culprit]).trim()}`;
  return `  ${head}\n  the ${window.length} operations called last before it (∞ = still pending then):\n` +
    describeOps(window);
}

function describeOps(ops: KvOperation[]): string {
  return [...ops].sort((a, b) => a.call - b.call).map((o) => {
    const ret = o.ret === Infinity ? "∞" : String(o.ret);
    const what = o.kind === "put"
      ? `put(${o.value})`
      : o.kind === "get"
      ? `get() -> ${o.value ?? "<absent>"}`
      : `cas(${o.expected ?? "<absent>"} -> ${o.value}) ${casOutcome(o)}`;
    return `  client ${o.clientId}: [${o.call}, ${ret}] ${o.key} ${what}`;
  }).join("\n");
}

function casOutcome(o: KvOperation): string {
  if (o.swapped === undefined) return "unknown";
  return o.swapped ? "swapped" : `refused, saw ${o.previous ?? "<absent>"}`;
}

function buildList(ops: KvOperation[]): ListEntry {
  const entries: ListEntry[] = [];
  ops.forEach((o, i) => {
    const call: ListEntry = {
      isCall: true,
      op: i,
      time: o.call,
      match: undefined,
      prev: undefined,
      next: undefined,
    };
    const ret: ListEntry = {
      isCall: false,
      op: i,
      time: o.ret,
      match: undefined,
      prev: undefined,
      next: undefined,
    };
    call.match = ret;
    entries.push(call, ret);
  });
  // Calls before returns at equal times: operations that touch are treated as concurrent.
  entries.sort((a, b) =>
    a.time - b.time || (a.isCall === b.isCall ? a.op - b.op : a.isCall ? -1 : 1)
  );
  const head: ListEntry = {
    isCall: false,
    op: -1,
    time: -Infinity,
    match: undefined,
    prev: undefined,
    next: undefined,
  };
  let prev = head;
  for (const e of entries) {
    prev.next = e;
    e.prev = prev;
    prev = e;
  }
  return head;
}

function lift(call: ListEntry): void {
  call.prev!.next = call.next;
  if (call.next) call.next.prev = call.prev;
  const ret = call.match!;
  ret.prev!.next = ret.next;
  if (ret.next) ret.next.prev = ret.prev;
}

function unlift(call: ListEntry): void {
  const ret = call.match!;
  ret.prev!.next = ret;
  if (ret.next) ret.next.prev = ret;
  call.prev!.next = call;
  if (call.next) call.next.prev = call;
}

/**
 * The register model: a put always succeeds; a get must return the current value; a cas
 * swaps when the current value is the expected one (see the module header).
 */
function step(
  state: string | undefined,
  op: KvOperation,
): { ok: boolean; state: string | undefined } {
  if (op.kind === "put") return { ok: true, state: op.value };
  if (op.kind === "cas") {
    const matches = state === op.expected;
    if (op.swapped === undefined) return { ok: true, state: matches ? op.value : state };
    if (op.swapped) return { ok: matches, state: op.value };
    return { ok: !matches && state === op.previous, state };
  }
  return { ok: op.value === state, state };
}

/** Wing–Gong search with memoization on one key's operations. */
export function checkRegister(ops: KvOperation[]): boolean {
  const head = buildList(ops);
  const linearized = new Uint8Array(ops.length);
  const cache = new Set<string>();
  const stack: { entry: ListEntry; state: string | undefined }[] = [];
  let state: string | undefined = undefined;
  let entry = head.next;
  let steps = 0;
  while (head.next !== undefined) {
    if (++steps > MAX_SEARCH_STEPS_PER_KEY) return false;
    if (entry === undefined) throw new Error("linearizability: ran off the list");
    if (entry.isCall) {
      const op = ops[entry.op]!;
      const r = step(state, op);
      if (r.ok) {
        linearized[entry.op] = 1;
        const key = cacheKey(linearized, r.state);
        if (!cache.has(key)) {
          cache.add(key);
          stack.push({ entry, state });
          state = r.state;
          lift(entry);
          entry = head.next;
          continue;
        }
        linearized[entry.op] = 0;
      }
      entry = entry.next;
    } else {
      // A return whose call could not be placed: undo the last choice.
      const top = stack.pop();
      if (top === undefined) return false;
      state = top.state;
      linearized[top.entry.op] = 0;
      unlift(top.entry);
      entry = top.entry.next;
    }
  }
  return true;
}

function cacheKey(bits: Uint8Array, state: string | undefined): string {
  let s = "";
  for (let i = 0; i < bits.length; i += 16) {
    let word = 0;
    for (let j = 0; j < 16 && i + j < bits.length; j++) word |= bits[i + j]! << j;
    s += String.fromCharCode(word);
  }
  return `${s}|${state === undefined ? "\u0000" : state}`;
}

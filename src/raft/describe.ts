/**
 * Human-readable renderings of Raft values, for traces, datadriven tests and failure reports.
 *
 * Renderings are stable (tests compare them byte for byte): change them only together with a
 * `REWRITE=1` run whose diff is reviewed.
 *
 * @module
 */

import {
  ConfChangeType,
  decodeConfChange,
  type Entry,
  EntryType,
  type HardState,
  type Message,
  MessageType,
} from "./types.ts";

const decoder = new TextDecoder();

/** Renders bytes as a quoted string if printable, else as hex. */
export function describeBytes(b: Uint8Array): string {
  for (const c of b) {
    if (c < 0x20 || c > 0x7e) {
      return `0x${[...b].map((x) => x.toString(16).padStart(2, "0")).join("")}`;
    }
  }
  return JSON.stringify(decoder.decode(b));
}

/** `term/index Type data`, e.g. `1/3 EntryNormal "foo"`. */
export function describeEntry(e: Entry): string {
  if (e.entryType === EntryType.EntryConfChange) {
    const cc = decodeConfChange(e.data);
    return `${e.term}/${e.index} EntryConfChange ${ConfChangeType[cc.changeType]} ${cc.nodeId}`;
  }
  return `${e.term}/${e.index} ${EntryType[e.entryType]} ${describeBytes(e.data)}`;
}

/** `Term:1 Vote:2 Commit:3`. */
export function describeHardState(hs: HardState): string {
  return `Term:${hs.term} Vote:${hs.vote} Commit:${hs.commit}`;
}

/** One line per message, showing only the fields that matter for its type. */
export function describeMessage(m: Message): string {
  const parts = [`${m.from}->${m.to} ${MessageType[m.msgType]} Term:${m.term}`];
  switch (m.msgType) {
    case MessageType.MsgAppend:
      parts.push(`Log:${m.logTerm}/${m.index} Commit:${m.commit}`);
      break;
    case MessageType.MsgAppendResponse:
      parts.push(
        m.reject
          ? `Rejected (Hint: ${m.rejectHint}, LogTerm: ${m.logTerm}) Index:${m.index}`
          : `Index:${m.index}`,
      );
      break;
    case MessageType.MsgRequestVote:
    case MessageType.MsgRequestPreVote:
      parts.push(`Log:${m.logTerm}/${m.index}`);
      break;
    case MessageType.MsgRequestVoteResponse:
    case MessageType.MsgRequestPreVoteResponse:
      if (m.reject) parts.push("Rejected");
      break;
    case MessageType.MsgHeartbeat:
      parts.push(`Commit:${m.commit}`);
      break;
    case MessageType.MsgSnapshot: {
      const md = m.snapshot!.metadata;
      parts.push(
        `Snapshot: Index:${md.index} Term:${md.term} Voters:(${md.confState.voters.join(",")})`,
      );
      break;
    }
    case MessageType.MsgReadIndex:
    case MessageType.MsgReadIndexResp:
      parts.push(`Index:${m.index}`);
      break;
  }
  if (m.context.length > 0 && m.msgType !== MessageType.MsgHeartbeat) {
    parts.push(`Context:${describeBytes(m.context)}`);
  }
  if (m.msgType === MessageType.MsgHeartbeat || m.msgType === MessageType.MsgHeartbeatResponse) {
    if (m.context.length > 0) parts.push(`Context:${describeBytes(m.context)}`);
  }
  if (
    m.entries.length > 0 && m.msgType !== MessageType.MsgReadIndex &&
    m.msgType !== MessageType.MsgReadIndexResp
  ) {
    parts.push(`Entries:[${m.entries.map(describeEntry).join(", ")}]`);
  }
  return parts.join(" ");
}

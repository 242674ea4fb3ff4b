/** A failure `basalt-ctl` reports in one line and exits non-zero for. */
export class CtlError extends Error {}

export type P2PRequestErrorCode =
  | 'TIMEOUT'           // the exchange did not finish within timeoutMs
  | 'FRAME_TOO_LARGE'   // a response frame exceeded maxResponseFrameBytes
  | 'TOO_MANY_FRAMES'   // more than maxFrames response frames
  | 'TOO_MANY_BYTES'    // the response frames together exceeded maxResponseBytes
  | 'STALLED'           // no response frame within idleTimeoutMs (of the request, or of the previous frame)
  | 'DIAL_FAILED'       // could not open a stream (no route, protocol unsupported, refused)
  | 'BAD_FRAME'         // a response frame that is not valid on the protocol (a reused stream's frame of unknown type)
  | 'STREAM_ERROR';     // the remote reset the stream or it broke mid-exchange

/** Error thrown by `P2PNode.request()`; `code` tells callers how to react (retry, penalise…). */
export class P2PRequestError extends Error {
  override readonly name = 'P2PRequestError';
  constructor(readonly code: P2PRequestErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

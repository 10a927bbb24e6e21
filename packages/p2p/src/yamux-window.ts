/**
 * Yamux window updates only when they are needed.
 *
 * @chainsafe/libp2p-yamux 7 answers every chunk a stream's reader consumes with a WINDOW_UPDATE
 * frame (12 bytes, one Noise encryption and one socket write each, and one read and decryption
 * at the peer). On a devnet at rest that was about half of a validator's socket writes: each vote
 * frame received was answered by a window update. go-yamux and rust-yamux send one only once at
 * least half of the receive window was consumed (or a flag, SYN/ACK, is due), which is what this
 * does. The sender is never starved: it blocks only when its whole window is spent, and by then
 * more than half of it has been consumed here, so the next chunk read sends the update.
 *
 * The library exports the stream class (`@chainsafe/libp2p-yamux/stream`) but no option for
 * this, so the method is wrapped once per process. The wrapper checks the fields it reads and
 * leaves the library's behaviour alone if a new version no longer has them.
 */
import { YamuxStream, StreamState } from '@chainsafe/libp2p-yamux/stream';

/** The fields of a YamuxStream this reads (private in the library's types). */
interface WindowState {
  state: StreamState;
  recvWindow: number;
  recvWindowCapacity: number;
}

function isWindowState(s: unknown): s is WindowState {
  const w = s as Partial<WindowState>;
  return typeof w.recvWindow === 'number' && typeof w.recvWindowCapacity === 'number' && typeof w.state === 'number';
}

/** Whether a window update can be left out: no flag due, and less than half the window consumed. */
export function windowUpdateOmittable(s: WindowState): boolean {
  if (s.state === StreamState.Init || s.state === StreamState.SYNReceived) return false;
  return s.recvWindow - s.recvWindowCapacity < s.recvWindow / 2;
}

let installed = false;

/** Install the wrapper (idempotent). Returns whether the library has the method it wraps. */
export function lazyYamuxWindowUpdates(): boolean {
  const proto = YamuxStream.prototype as unknown as { sendWindowUpdate?: (this: YamuxStream) => void };
  const original = proto.sendWindowUpdate;
  if (typeof original !== 'function') return false;
  if (installed) return true;
  installed = true;
  proto.sendWindowUpdate = function (this: YamuxStream): void {
    const s: unknown = this;
    if (isWindowState(s) && windowUpdateOmittable(s)) return;
    original.call(this);
  };
  return true;
}

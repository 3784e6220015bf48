/**
 * WebSocket frame headers (RFC 6455, section 5.2), read without copying: where a frame's payload
 * starts and ends. Used to tell a client's close frame in a read (lifecyclePacing.ts) and by the
 * load generator's lean client.
 */

export interface FrameHeader {
  opcode: number;
  fin: boolean;
  masked: boolean;
  payloadLength: number;
  payloadStart: number;
  /** Offset just past the frame: beyond the data when the frame is not complete yet. */
  end: number;
}

/**
 * The header of the frame at `offset`: undefined while the header itself is incomplete, 'too
 * large' for a 64-bit length of 2^32 or more (no peer here sends one).
 */
export function frameHeaderAt(data: Buffer, offset: number): FrameHeader | 'too large' | undefined {
  if (data.length - offset < 2) return undefined;
  const first = data[offset] as number;
  const second = data[offset + 1] as number;
  let payloadLength = second & 0x7f;
  let headerLength = 2;
  if (payloadLength === 126) {
    if (data.length - offset < 4) return undefined;
    payloadLength = data.readUInt16BE(offset + 2);
    headerLength = 4;
  } else if (payloadLength === 127) {
    if (data.length - offset < 10) return undefined;
    if (data.readUInt32BE(offset + 2) !== 0) return 'too large';
    payloadLength = data.readUInt32BE(offset + 6);
    headerLength = 10;
  }
  const masked = (second & 0x80) !== 0;
  if (masked) headerLength += 4;
  const payloadStart = offset + headerLength;
  return { opcode: first & 0x0f, fin: (first & 0x80) !== 0, masked, payloadLength, payloadStart, end: payloadStart + payloadLength };
}

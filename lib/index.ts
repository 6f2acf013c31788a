/**
 * swarm's public API. The CLI (bin/) uses only what is exported here.
 */
export { SwarmError, ERROR_CODES, EXIT_CODES, exitCodeFor, toWire, fromWire, type ErrorCode, type WireError } from './errors.js';
export * as constants from './constants.js';
export type { FileInfo, FileKind, Manifest, DirectoryEntry, PeerAddress } from './types.js';
export { FrameDecoder, encodeFrame, encodeFrameBuffer, type Header, type FrameHandler } from './protocol/frame.js';
export { encodePacket, encodePacketHead, decodePacketHeader, copyAndVerify, type PacketHeader } from './protocol/packet.js';
export { internetChecksum, sum16 } from './protocol/checksum.js';
export { VERSION } from './version.js';

/**
 * swarm's public API. The CLI (bin/) uses only what is exported here.
 */
export { SwarmError, ERROR_CODES, EXIT_CODES, EXIT_CODE_OF, exitCodeFor, toWire, fromWire, asSwarmError, type ErrorCode, type ExitCode, type WireError } from './errors.js';
export * as constants from './constants.js';
export type { FileInfo, FileKind, DirectoryEntry, PeerAddress, Version } from './types.js';
export type { Manifest } from './manifest.js';
export { FrameDecoder, encodeFrame, encodeFrameBuffer, type Header, type FrameHandler } from './protocol/frame.js';
export { encodePacket, encodePacketHead, decodePacketHeader, packetChecksumOk, packetHeaderSum, type PacketHeader } from './protocol/packet.js';
export { internetChecksum, sum16 } from './protocol/checksum.js';
export { VERSION } from './version.js';
export { serve, type ServeHandle, type ServeOptions } from './serve.js';
export { SwarmNode, type NodeOptions } from './node/node.js';
export { tracker, TrackerServer, type TrackerOptions } from './tracker/server.js';
export { trackerDirectory, trackerVersions, trackerPeersOf, withTracker } from './tracker/client.js';
export { listLocal, listPeer, type LocalFileInfo } from './listing.js';
export { parseHostPort } from './net/framed-client.js';
export { PeerClient } from './peer/client.js';
export { openLogFile, type Log } from './log.js';
export { Library, type HashProgress } from './share/library.js';
export { createChunkPool, ThreadChunkPool, InlineChunkPool, type ChunkPool } from './pool.js';
export { scanShare, diffScans } from './share/scanner.js';
export { get, Download, DEFAULT_BUDGET_BYTES, type GetOptions, type GetPromise, type GetStep, type DownloadHost } from './download/get.js';
export type { DoneEvent, StartEvent, ProgressEvent, PeerView } from './download/events.js';
export { resolveTarget, mergeVersions, defaultTracker, type Target, type VersionFinder } from './download/resolve.js';
export { normalizeUserName, nameProblem } from './protocol/names.js';
export { PROTOCOL_VERSION } from './protocol/messages.js';
export { CHUNK_HASH_NAME } from './hashing.js';
export { formatBreakdown, type Breakdown } from './download/breakdown.js';
export { defaultLayout, type Layout } from './layout.js';
export { PeerBook, type KnownPeer, type PeerSourceKind } from './discovery/peer-book.js';
export { Overlay, type Hit, type Pong } from './discovery/overlay.js';
export { MAX_TTL } from './discovery/flood.js';
export { LanDiscovery, DEFAULT_LAN_PORT, DEFAULT_LAN_BROADCAST, type LanPeer } from './discovery/lan.js';
export { DEFAULT_SEARCH_TTL, DEFAULT_SEARCH_WAIT_MS, type SearchResult } from './discovery/search.js';
export type { LanSettings } from './node/discovery.js';
export { Shell, type ShellOptions } from './shell/shell.js';
export { COMMANDS as SHELL_COMMANDS, parseLine } from './shell/commands.js';

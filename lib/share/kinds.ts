/** seed 001's file types (video / music / picture ...), decided by extension. */
import type { FileKind } from '../types.js';

const BY_EXT: Record<string, FileKind> = {};
const add = (kind: FileKind, exts: string) => exts.split(' ').forEach((e) => (BY_EXT[e] = kind));
add('video', 'mov mp4 mkv avi webm m4v mpg mpeg wmv flv');
add('music', 'mp3 flac ogg opus wav m4a aac wma');
add('picture', 'jpg jpeg png gif webp bmp tif tiff svg heic raw');
add('document', 'txt md pdf doc docx odt rtf xls xlsx ods ppt pptx odp csv json html epub');
add('archive', 'zip tar gz tgz xz bz2 zst 7z rar iso img dmg deb rpm');

export function kindOf(name: string): FileKind {
  const dot = name.lastIndexOf('.');
  if (dot < 0 || dot < name.lastIndexOf('/')) return 'other';
  return BY_EXT[name.slice(dot + 1).toLowerCase()] ?? 'other';
}

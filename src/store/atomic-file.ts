import { open, rename, mkdir } from 'node:fs/promises'
import { dirname } from 'node:path'

/**
 * Replaces `path` with `data` so that a crash leaves either the old or the new content:
 * write a temporary file beside it, fsync it, rename it over, then fsync the directory.
 */
export async function writeFileAtomic(path: string, data: string): Promise<void> {
  const dir = dirname(path)
  await mkdir(dir, { recursive: true })
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`
  const fh = await open(tmp, 'w', 0o600)
  try {
    await fh.writeFile(data)
    await fh.sync()
  } finally {
    await fh.close()
  }
  await rename(tmp, path)
  const dh = await open(dir, 'r')
  try {
    await dh.sync()
  } finally {
    await dh.close()
  }
}

// Opens a container's FIFO for reading. `fs` streams would park a libuv pool thread in a
// blocking read per FIFO (four threads serve the whole process); a non-blocking fd in a
// net.Socket is polled with epoll instead, so idle containers cost nothing.
import fs from 'node:fs';
import net from 'node:net';

export function openFifo(path: string): net.Socket {
  // The daemon holds the FIFO open read-write, so this open neither blocks nor sees EOF early.
  // Only the daemon's own FIFO is read: a symlink in the FIFO folder is refused, not followed.
  const fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOFOLLOW);
  try {
    if (!fs.fstatSync(fd).isFIFO()) throw new Error(`${path} is not a FIFO`);
    return new net.Socket({ fd, readable: true, writable: false });
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
}

// Prints the busybox test image's reference, importing it first if needed (used by `make demo`).
import { ensureTestImage } from './image.ts';

process.stdout.write(`${await ensureTestImage()}\n`);

// A batch some backends cannot send in one request (CloudWatch's puts, Cloud Logging's writes
// of heavy parse-json lines) goes as parts, in order. When a part fails the engine sends the
// same batch (the same array) again; the retry starts at the part that failed, so the parts
// the receiver already has are not written twice.
import type { OutgoingLine } from '../delivery/backend.ts';

export class BatchParts {
  /** The batch a failed send left half done, and how many of its parts went through. */
  private resume: { lines: readonly OutgoingLine[]; done: number } | null = null;

  async send<Part>(lines: readonly OutgoingLine[], parts: readonly Part[], sendPart: (part: Part) => Promise<void>): Promise<void> {
    const from = this.resume?.lines === lines ? this.resume.done : 0;
    for (let i = from; i < parts.length; i++) {
      try {
        await sendPart(parts[i]!);
      } catch (err) {
        this.resume = { lines, done: i };
        throw err;
      }
    }
    this.resume = null;
  }
}

/**
 * Server-sent events decoder (the subset providers use: `event`, `data`, comments). Bytes may arrive split
 * anywhere, inside a line, a CRLF or a multi-byte character; events come out whole. An event not terminated by
 * a blank line when the body ends is dropped, as the SSE spec requires.
 */
export interface SseEvent {
  event: string | undefined;
  data: string;
}

export class SseDecoder {
  private readonly text = new TextDecoder();
  private buffer = "";
  private data: string[] = [];
  private event: string | undefined;

  decode(bytes: Uint8Array): SseEvent[] {
    const chunk = this.text.decode(bytes, { stream: true });
    this.buffer = this.buffer.length === 0 ? chunk : this.buffer + chunk;
    const events: SseEvent[] = [];
    let start = 0;
    for (let newline = this.buffer.indexOf("\n"); newline !== -1; newline = this.buffer.indexOf("\n", start)) {
      const end = newline > start && this.buffer.charCodeAt(newline - 1) === 13 ? newline - 1 : newline;
      this.line(this.buffer.slice(start, end), events);
      start = newline + 1;
    }
    this.buffer = start === 0 ? this.buffer : this.buffer.slice(start);
    return events;
  }

  private line(line: string, events: SseEvent[]): void {
    if (line.length === 0) {
      if (this.data.length > 0) events.push({ event: this.event, data: this.data.length === 1 ? this.data[0]! : this.data.join("\n") });
      this.data = [];
      this.event = undefined;
      return;
    }
    if (line.charCodeAt(0) === 58 /* ":" comment */) return;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    if (field === "data") this.data.push(value);
    else if (field === "event") this.event = value;
  }
}

/** A strict SSE reader for tests: every event must be `event:`/`data:` lines ended by a blank line. */
export interface SseEvent {
  readonly event: string | null;
  readonly data: string;
}

export function parseSse(text: string): SseEvent[] {
  if (text.length > 0 && !text.endsWith("\n\n"))
    throw new Error(`stream does not end with a complete event: ${JSON.stringify(text.slice(-80))}`);
  return text
    .split("\n\n")
    .filter((block) => block.length > 0)
    .map((block) => {
      let event: string | null = null;
      const data: string[] = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) event = line.slice(7);
        else if (line.startsWith("data: ")) data.push(line.slice(6));
        else throw new Error(`unexpected SSE line ${JSON.stringify(line)}`);
      }
      return { event, data: data.join("\n") };
    });
}

/** Reads a fetch response body to the end as SSE events, or fails with what was read before the error. */
export async function readSse(response: Response): Promise<SseEvent[]> {
  return parseSse(await response.text());
}

/** Reads SSE events until the body breaks; returns the complete events read and the error. */
export async function readSseUntilError(response: Response): Promise<{ events: SseEvent[]; error: unknown }> {
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return { events: parseSse(text), error: null };
      text += value;
    }
  } catch (error) {
    return { events: parseSse(text.slice(0, text.lastIndexOf("\n\n") + 2)), error };
  }
}

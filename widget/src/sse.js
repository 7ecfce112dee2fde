// SSE over fetch: bytes -> text -> lines -> events, one small pure function each (the shape
// of Azure/fetch-event-source). Nothing here touches the DOM or the network.

// push(text) -> complete lines. The tail waits for the next chunk; "\r" ending one chunk and
// "\n" opening the next are one line break.
export function createLineSplitter() {
  let tail = '';
  let skipLF = false;
  return function push(text) {
    const lines = [];
    if (!text) return lines;
    let start = 0;
    if (skipLF && text.charCodeAt(0) === 10) start = 1;
    skipLF = false;
    for (let i = start; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      lines.push(tail + text.slice(start, i));
      tail = '';
      if (c === 13) {
        if (i + 1 === text.length) skipLF = true;
        else if (text.charCodeAt(i + 1) === 10) i++;
      }
      start = i + 1;
    }
    tail += text.slice(start);
    return lines;
  };
}

// line(text) -> event | null, by the EventSource rules: a blank line dispatches, ":" opens
// a comment (": ping"), one space after the colon is dropped.
export function createEventParser() {
  let data = [];
  let type = '';
  let lastId = '';
  return function line(text) {
    if (text === '') {
      const event = data.length ? { id: lastId, event: type || 'message', data: data.join('\n') } : null;
      data = [];
      type = '';
      return event;
    }
    if (text.charCodeAt(0) === 58) return null;
    const colon = text.indexOf(':');
    const field = colon < 0 ? text : text.slice(0, colon);
    let value = colon < 0 ? '' : text.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    if (field === 'data') data.push(value);
    else if (field === 'event') type = value;
    else if (field === 'id' && value.indexOf('\0') < 0) lastId = value;
    return null;
  };
}

// Bytes in, events out. TextDecoder with stream:true keeps a character split across chunks
// whole. An event left open when the stream ends is dropped, as EventSource does.
export function createSSEParser(onEvent) {
  const decoder = new TextDecoder('utf-8');
  const split = createLineSplitter();
  const parse = createEventParser();
  function feed(text) {
    for (const line of split(text)) {
      const event = parse(line);
      if (event) onEvent(event);
    }
  }
  return {
    push(bytes) { feed(decoder.decode(bytes, { stream: true })); },
    end() { feed(decoder.decode()); },
  };
}

// The chat API puts one JSON object with a "type" in each data field.
export function parseChatEvent(event) {
  try {
    const value = JSON.parse(event.data);
    return value && typeof value === 'object' && typeof value.type === 'string' ? value : null;
  } catch (_) {
    return null;
  }
}

// "text/event-stream; charset=utf-8" -> true. A 200 that is anything else (a proxy's HTML
// page, a JSON body) is not parsed as a stream.
export function isEventStream(contentType) {
  return /^text\/event-stream\s*(;|$)/i.test(contentType || '');
}

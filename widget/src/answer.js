// One answer followed to its end across drops of the network: the question's POST, then,
// after a drop, resumes of the same message from the last frame seen. The SSE id is a
// frame's number within its answer and a resume sends only the frames after it, so no text
// is shown twice or skipped. No DOM here: widget.js draws what this reports.

// The wait before reconnect attempt n (0, 1, ...): 0.5 s doubling up to 8 s, give or take a
// quarter, so that the visitors one outage cut off do not all come back at the same instant.
export const backoff = (n, random = Math.random()) => Math.min(8e3, 500 * 2 ** n) * (0.75 + random / 2);

// o: {body: the question to POST, or resume message `mid` of session `sid` instead; idleMs:
// silence (not even a ping) after which the stream is lost; onEvent(ev): each event once, in
// order, the final one excepted; onState(reconnecting: boolean); refresh(): fetch a new visitor
// token after a 401; delay(n): the backoff (10 tries in a row, about a minute, then it gives
// up)}.
// -> {done: a promise of the final event (complete or error; null when stop had to cut the
// stream short) or of the failure describeFailure reads ({resume: true} once reconnecting
// gave up); stop(): the server stops the answer, whose stream then ends with a complete
// event marked stopped; wake(): reconnect now (the browser is back online); close()}.
export function followAnswer(client, o) {
  let { sid, mid } = o;
  let last = 0;
  let tries = 0;
  let controller, idle, woken, final, stopping, ended, down, refreshed;

  const wake = () => woken && woken();
  const close = () => { ended = true; controller.abort(); wake(); };
  // Stop closes the stream when the server cannot be told, else gives it two seconds to bring
  // the stopped answer's complete event (reconnecting at once if it was waiting to).
  const stopNow = () => client.stop(sid, mid).then(() => { setTimeout(close, 2e3); wake(); }, close);
  const watch = () => { clearTimeout(idle); idle = setTimeout(() => controller.abort(), o.idleMs); };
  const onBytes = () => {
    watch();
    if (down) { down = tries = 0; o.onState(false); }
  };
  const onEvent = (ev, id) => {
    const n = +id || 0;
    if (n && n <= last) return; // already shown
    if (n) last = n;
    if (ev.type === 'start') {
      sid = ev.session_id || sid;
      mid = ev.message_id || mid;
      if (stopping) stopNow();
    }
    if (ev.type === 'complete' || ev.type === 'error') final = ev;
    else o.onEvent(ev);
  };

  async function run() {
    while (!ended) {
      controller = new AbortController();
      try {
        watch();
        if (mid) await client.resume(sid, mid, last, controller.signal, onEvent, onBytes);
        else await client.stream(o.body, controller.signal, onEvent, onBytes);
        if (final) return final;
        throw { cut: true };
      } catch (err) {
        if (ended) break;
        if (err.status === 401 && !refreshed) {
          refreshed = true;
          await o.refresh();
          continue;
        }
        // Before the start event there is no message to resume, but a question a restarting
        // worker refused (server_restarting) is asked again: another worker takes it.
        if (!mid && (err.body || {}).code !== 'server_restarting') throw err;
        // Only the network's fault is worth another try: fetch's own error (the idle timer's
        // abort included), a stream cut before its final event, a server error (a proxy's 502
        // while a worker restarts). Not a 4xx: that request is refused.
        if (err.status < 500 || tries > 9) throw { resume: true };
        if (!down) o.onState((down = true));
        await new Promise((resolve) => { woken = resolve; setTimeout(resolve, (o.delay || backoff)(tries++)); });
      } finally {
        clearTimeout(idle);
      }
    }
    return final || null;
  }

  return {
    done: run(),
    wake,
    close,
    stop() {
      // The message id comes with the start event: stop is asked then, or the stream closed
      // if it never comes.
      if (!stopping) {
        stopping = true;
        if (mid) stopNow();
        else setTimeout(close, 2e3);
      }
    },
  };
}

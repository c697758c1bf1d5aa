// An independent npcface sidecar client, written from bridge/PROTOCOL.md alone.
// Usage: node client.mjs ENDPOINT WAV_PATH TEXT [AVATAR_PATH]
// Runs the conversation (hello, a bad request, open, stream a line, end it, frames, close) and
// prints a JSON summary on stdout for tests/test_node_client.py to check.
import { readFileSync } from "node:fs";
import { Dealer } from "zeromq";
import { encode, decode } from "@msgpack/msgpack";

const [endpoint, wavPath, text, avatarPath] = process.argv.slice(2);
const TIMEOUT_MS = 60000;  // generous: only a server that never answers hits it

// ---- WAV (RIFF) parsing: PCM 16-bit little-endian, any rate and channel count.
function readWav(path) {
  const buf = readFileSync(path);
  if (buf.toString("ascii", 0, 4) !== "RIFF" || buf.toString("ascii", 8, 12) !== "WAVE") {
    throw new Error(`${path} is not a RIFF/WAVE file`);
  }
  let offset = 12, rate = 0, channels = 0, bits = 0, data = null;
  while (offset + 8 <= buf.length) {
    const id = buf.toString("ascii", offset, offset + 4);
    const size = buf.readUInt32LE(offset + 4);
    const body = offset + 8;
    if (id === "fmt ") {
      channels = buf.readUInt16LE(body + 2);
      rate = buf.readUInt32LE(body + 4);
      bits = buf.readUInt16LE(body + 14);
    } else if (id === "data") {
      data = buf.subarray(body, body + size);
    }
    offset = body + size + (size % 2);
  }
  if (bits !== 16 || data === null) throw new Error(`${path}: only 16-bit PCM WAV is supported here`);
  return { rate, channels, data };
}

// ---- Transport: one DEALER; frames are [msgpack header, ...payloads].
const socket = new Dealer({ linger: 0, receiveTimeout: TIMEOUT_MS, sendTimeout: TIMEOUT_MS });
socket.connect(endpoint);
let nextId = 0;
const newId = () => `node-${nextId++}`;

async function send(header, payloads = []) {
  await socket.send([encode(header), ...payloads]);
}

async function receive() {
  const frames = await socket.receive();
  return { header: decode(frames[0]), payloads: frames.slice(1) };
}

// Wait for the reply whose id matches; other messages go to `backlog`.
const backlog = [];
async function request(header, payloads = []) {
  const id = newId();
  await send({ ...header, id }, payloads);
  for (;;) {
    const message = await receive();
    if (message.header.id === id) return message.header;
    backlog.push(message);
  }
}

function nextMessage() {
  return backlog.length ? Promise.resolve(backlog.shift()) : receive();
}

// Stream a line in 100 ms chunks, end it, and collect ticks/frames until line_end.
async function speak(session, wav, withFrames) {
  const frameBytes = 2 * wav.channels;
  const chunkBytes = Math.floor(wav.rate / 10) * frameBytes;
  let seq = 0;
  for (let start = 0; start < wav.data.length; start += chunkBytes) {
    const header = { type: "audio", id: newId(), session, seq, rate: wav.rate, channels: wav.channels, format: "s16le" };
    if (seq === 0) header.text = text;
    await send(header, [wav.data.subarray(start, start + chunkBytes)]);
    seq += 1;
  }
  const endId = newId();
  await send({ type: "end_line", id: endId, session });
  const ticks = [];
  let frames = 0, frameSizeOk = true, lineEnd = null, errors = [];
  while (lineEnd === null) {
    const { header, payloads } = await nextMessage();
    if (header.session !== session) continue;
    if (header.type === "tick") {
      ticks.push({ index: header.index, time: header.time, head: header.head_rotation, arkit: header.arkit,
                   visemes: header.visemes });
    } else if (header.type === "frame") {
      frames += 1;
      // A payload Buffer may sit at any byteOffset: copy before viewing typed arrays (spec section 12).
      const pixels = new Uint8Array(payloads[0]);
      frameSizeOk &&= pixels.length === header.width * header.height * 4;
      await send({ type: "frame_ack", session, count: 1 });
    } else if (header.type === "line_end" && header.id === endId) {
      lineEnd = header;
    } else if (header.type === "error") {
      errors.push(header);
      if (errors.length > 5) throw new Error(`errors: ${JSON.stringify(errors)}`);
    }
  }
  if (withFrames) return { ticks: ticks.length, frames, frameSizeOk, lineEnd, errors };
  return { ticks, lineEnd, errors };
}

async function main() {
  const summary = {};
  const welcome = await request({ type: "hello", protocol: "1.2", client: "node-test/0.1" });
  summary.welcome = { type: welcome.type, protocol: welcome.protocol, arkit: welcome.capabilities.channels.arkit,
                      outputs: welcome.capabilities.outputs, motion: welcome.capabilities.motion };

  // A request for a session that does not exist: the error must name it by our id.
  const badId = newId();
  await send({ type: "end_line", id: badId, session: "nobody" });
  const bad = await nextMessage();
  summary.badRequest = { sentId: badId, type: bad.header.type, id: bad.header.id, code: bad.header.code };

  const opened = await request({ type: "open", session: "node", outputs: ["latents"], channels: ["arkit", "visemes"],
                                 fps: 30, seed: 0, motion: "rules" });
  summary.opened = { type: opened.type, motion: opened.motion };
  const wav = readWav(wavPath);
  summary.latents = await speak("node", wav, false);

  if (avatarPath) {
    const avatar = await request({ type: "upload_avatar" }, [readFileSync(avatarPath)]);
    summary.avatar = avatar.type === "avatar" ? avatar.avatar : avatar;
    const openedFrames = await request({ type: "open", session: "node-frames", outputs: ["frames"],
                                         avatar: avatar.avatar, frame_size: [128, 128], frame_format: "rgba8",
                                         frame_policy: "every", frame_window: 4 });
    summary.openedFrames = openedFrames.type;
    summary.frames = await speak("node-frames", wav, true);
    summary.closedFrames = (await request({ type: "close", session: "node-frames" })).type;
  }
  const closed = await request({ type: "close", session: "node" });
  summary.closed = { type: closed.type, ticks_sent: closed.ticks_sent };
  process.stdout.write(JSON.stringify(summary));
  socket.close();
}

main().catch((error) => {
  process.stderr.write(`node client failed: ${error.stack || error}\n`);
  socket.close();
  process.exit(1);
});

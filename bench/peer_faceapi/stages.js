/*
 * stages.js: the peer for bench/stages.c. Times face-api 1.7.15 on
 * TensorFlow.js 4.22 with the WebAssembly backend (SIMD, one thread), stage by
 * stage, on the same photos, and prints one JSON object of medians (ms).
 *
 *   node stages.js [--reps N] IMAGE...        (JPEG only: decoded with jpeg-js)
 *   node stages.js --index N IMAGE...         (indexing throughput: detect +
 *                                              landmarks + descriptor per image,
 *                                              N passes over the images)
 *
 * What each figure is, so the comparison with ours stays honest:
 *  - detect_ssd: faceapi.detectAllFaces with SsdMobilenetv1Options() at its
 *    defaults (minConfidence 0.5, maxResults 100): face-api's default detector,
 *    per image (the peer for our MTCNN).
 *  - detect_tiny: TinyFaceDetectorOptions() at its defaults (inputSize 416),
 *    per image (face-api's fast detector, for reference).
 *  - landmarks: crop of the detected box (extractFaceTensors) + landmark68,
 *    per face (ours: crop + landmark68 from the box).
 *  - descriptor: crop of the aligned box + faceRecognitionNet (dlib ResNet-34
 *    weights, resize to 150 inside), per face (ours: dlib chip warp + ResNet).
 * Times are CPU time of the process (process.cpuUsage, user + system) per
 * call; wall medians are printed too.
 */
'use strict';

const fs = require('fs');
const path = require('path');
const jpeg = require('jpeg-js');
const tf = require('@tensorflow/tfjs');
const wasm = require('@tensorflow/tfjs-backend-wasm');
const faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js');

function median(a) {
  if (!a.length) return 0;
  const s = [...a].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)];
}

function cpuMs() {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

function decode(file) {
  const raw = jpeg.decode(fs.readFileSync(file), { useTArray: true, formatAsRGBA: false, maxMemoryUsageInMB: 1024 });
  return tf.tensor3d(raw.data, [raw.height, raw.width, 3], 'int32');
}

async function timed(fn, cpu, wall) {
  const c0 = cpuMs();
  const t0 = performance.now();
  const r = await fn();
  wall.push(performance.now() - t0);
  cpu.push(cpuMs() - c0);
  return r;
}

async function setup() {
  const dist = path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm')), path.sep);
  wasm.setWasmPaths(dist);
  wasm.setThreadsCount(1);
  await tf.setBackend('wasm');
  await tf.ready();
  const model = path.join(path.dirname(require.resolve('@vladmandic/face-api/package.json')), 'model');
  await faceapi.nets.ssdMobilenetv1.loadFromDisk(model);
  await faceapi.nets.tinyFaceDetector.loadFromDisk(model);
  await faceapi.nets.faceLandmark68Net.loadFromDisk(model);
  await faceapi.nets.faceRecognitionNet.loadFromDisk(model);
}

async function oneFace(img, det) {
  const [crop] = await faceapi.extractFaceTensors(img, [det]);
  const lm = await faceapi.nets.faceLandmark68Net.detectLandmarks(crop);
  tf.dispose(crop);
  const shifted = lm.shiftBy(det.box.x, det.box.y);
  const aligned = shifted.align();
  const [chip] = await faceapi.extractFaceTensors(img, [aligned]);
  const d = await faceapi.nets.faceRecognitionNet.computeFaceDescriptor(chip);
  tf.dispose(chip);
  return d;
}

async function stages(files, reps) {
  const ssdOpt = new faceapi.SsdMobilenetv1Options();
  const tinyOpt = new faceapi.TinyFaceDetectorOptions();
  const s = {};
  for (const k of ['detect_ssd', 'detect_tiny', 'landmarks', 'descriptor']) s[k] = { cpu: [], wall: [] };
  let faces = 0;
  for (const file of files) {
    const img = decode(file);
    let dets = await faceapi.detectAllFaces(img, ssdOpt); /* warm-up */
    await faceapi.detectAllFaces(img, tinyOpt);
    for (let r = 0; r < reps; r++) {
      dets = await timed(() => faceapi.detectAllFaces(img, ssdOpt), s.detect_ssd.cpu, s.detect_ssd.wall);
      await timed(() => faceapi.detectAllFaces(img, tinyOpt), s.detect_tiny.cpu, s.detect_tiny.wall);
    }
    faces += dets.length;
    for (const det of dets) {
      for (let r = 0; r < reps; r++) {
        const lm = await timed(async () => {
          const [crop] = await faceapi.extractFaceTensors(img, [det]);
          const out = await faceapi.nets.faceLandmark68Net.detectLandmarks(crop);
          tf.dispose(crop);
          return out;
        }, s.landmarks.cpu, s.landmarks.wall);
        const aligned = lm.shiftBy(det.box.x, det.box.y).align();
        await timed(async () => {
          const [chip] = await faceapi.extractFaceTensors(img, [aligned]);
          const d = await faceapi.nets.faceRecognitionNet.computeFaceDescriptor(chip);
          tf.dispose(chip);
          return d;
        }, s.descriptor.cpu, s.descriptor.wall);
      }
    }
    process.stderr.write(`${file}: ${img.shape[1]}x${img.shape[0]}, ${dets.length} faces (SSD)\n`);
    tf.dispose(img);
  }
  const out = { backend: tf.getBackend(), threads: wasm.getThreadsCount(), images: files.length, faces, reps };
  for (const k of Object.keys(s)) out[k] = { cpu_ms: median(s[k].cpu), wall_ms: median(s[k].wall) };
  return out;
}

async function index(files, passes) {
  /* one image = decode + SSD detect + per face landmarks + descriptor */
  const ssdOpt = new faceapi.SsdMobilenetv1Options();
  const bufs = files.map((f) => fs.readFileSync(f));
  let n = 0;
  {
    /* warm-up, untimed: the first inference of each net builds its kernels */
    const raw = jpeg.decode(bufs[0], { useTArray: true, formatAsRGBA: false, maxMemoryUsageInMB: 1024 });
    const img = tf.tensor3d(raw.data, [raw.height, raw.width, 3], 'int32');
    const dets = await faceapi.detectAllFaces(img, ssdOpt);
    for (const det of dets) await oneFace(img, det);
    tf.dispose(img);
  }
  const t0 = performance.now();
  const c0 = cpuMs();
  for (let p = 0; p < passes; p++) {
    for (const b of bufs) {
      const raw = jpeg.decode(b, { useTArray: true, formatAsRGBA: false, maxMemoryUsageInMB: 1024 });
      const img = tf.tensor3d(raw.data, [raw.height, raw.width, 3], 'int32');
      const dets = await faceapi.detectAllFaces(img, ssdOpt);
      for (const det of dets) await oneFace(img, det);
      tf.dispose(img);
      n++;
    }
  }
  const s = (performance.now() - t0) / 1000;
  return { images: n, seconds: s, images_per_s: n / s, cpu_ms_per_image: (cpuMs() - c0) / n };
}

async function main() {
  const args = process.argv.slice(2);
  let reps = 5;
  let passes = 0;
  while (args.length && args[0].startsWith('--')) {
    const a = args.shift();
    if (a === '--reps') reps = parseInt(args.shift(), 10);
    else if (a === '--index') passes = parseInt(args.shift(), 10);
    else throw new Error(`unknown option ${a}`);
  }
  await setup();
  const out = passes ? await index(args, passes) : await stages(args, reps);
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().catch((e) => {
  process.stderr.write(`${e.stack || e}\n`);
  process.exit(1);
});

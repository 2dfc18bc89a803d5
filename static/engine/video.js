/* Faces followed from frame to frame, labels smoothed: utils/live/tracking.py's FaceTracker and VideoAnalyser
   in the browser. The whole frame is searched ("fast") every few analysed frames or as soon as a
   followed face is lost; in between each face is looked for only near where it was. */
import { iou, orderKey, roundTo } from "./detection.js";
import { isUncertain } from "../shared/uncertain.js";

class Track {
  constructor(face, smooth) {
    this.face = face;
    this.history = [];
    this.smooth = smooth;
    this.id = null;
    this.hits = 1;
    this.missed = 0;
  }

  see(face) {
    this.face = face;
    this.missed = 0;
    this.hits += 1;
  }
}

export class FaceTracker {
  constructor(constants) {
    this.c = constants;
    this.tracks = [];
    this.nextId = 1;
  }

  confirmed(track) { return track.hits >= this.c.confirm_hits; }

  /* Whole-frame detections: each face continues the track it overlaps most, or starts one (update). */
  update(found) {
    const unmatched = [...this.tracks];
    for (const face of found) {
      let best = null;
      for (const track of unmatched) if (!best || iou(track.face.box, face.box) > iou(best.face.box, face.box)) best = track;
      if (best && iou(best.face.box, face.box) >= this.c.match_iou) {
        unmatched.splice(unmatched.indexOf(best), 1);
        best.see(face);
      } else {
        this.tracks.push(new Track(face, this.c.smooth_frames));
      }
    }
    this.settle(unmatched);
  }

  /* Between detections: each face is looked for near where it was (follow). */
  async follow(rgb, detector) {
    const lost = [];
    for (const track of this.tracks) {
      const face = await detector.findNear(rgb, track.face.box);
      if (face) track.see(face); else lost.push(track);
    }
    this.settle(lost);
  }

  settle(missed) {
    for (const track of missed) track.missed += 1;
    this.tracks = this.tracks.filter((track) => track.missed <= this.c.max_missed && (this.confirmed(track) || !track.missed));
    for (const track of this.tracks) {
      if (this.confirmed(track) && track.id === null) track.id = this.nextId++;
    }
  }
}

/* Frames in, smoothed per-face prediction dicts out (each with its ``id``), in face order. */
export class VideoAnalyser {
  constructor(detector, predictor, constants, sureScore) {
    this.detector = detector;
    this.predictor = predictor;
    this.c = constants;
    this.sureScore = sureScore;
    this.tracker = new FaceTracker(constants);
    this.analysed = 0;
    this.chosen = [];
    this.seen = [];   /* whether each chosen face was found in this very frame (a missed one keeps its last box) */
    this.milliseconds = { detect: 0, predict: 0 };
  }

  /* One frame (RGB and gray) -> its faces. */
  async analyse(rgb, gray, threshold) {
    let start = performance.now();
    const lost = this.tracker.tracks.some((track) => track.missed);
    if (lost || this.analysed % this.c.detect_every === 0) {
      this.tracker.update(await this.detector.findFaces(rgb, "fast"));
    } else {
      await this.tracker.follow(rgb, this.detector);
    }
    this.milliseconds.detect += performance.now() - start;
    start = performance.now();
    const tracks = this.tracker.tracks.filter((track) => this.tracker.confirmed(track))
      .map((track, i) => [track, i]).sort(([p, i], [q, j]) => {
        const [a, b] = [orderKey(p.face, this.sureScore), orderKey(q.face, this.sureScore)];
        return a[0] - b[0] || a[1] - b[1] || i - j;
      }).map(([track]) => track);
    this.seen = tracks.map((track) => track.missed === 0);
    this.chosen = tracks.length ? await this.predictor.chooseFaces(gray, tracks.map((track) => track.face), threshold) : [];
    const faces = tracks.map((track, i) => this.smoothed(track, this.chosen[i].prediction, threshold));
    this.milliseconds.predict += performance.now() - start;
    this.analysed += 1;
    return faces;
  }

  /* The face's mean probabilities over its last few analysed frames (_smooth). */
  smoothed(track, result, threshold) {
    const classes = this.predictor.classes;
    track.history.push(classes.map((name) => result.probabilities[name]));
    if (track.history.length > this.c.smooth_frames) track.history.shift();
    const mean = classes.map((_, k) => track.history.reduce((sum, row) => sum + row[k], 0) / track.history.length);
    let best = 0;
    mean.forEach((p, i) => { if (p > mean[best]) best = i; });
    return { ...result, id: track.id, label: classes[best], confidence: roundTo(mean[best], 4),
             probabilities: Object.fromEntries(classes.map((name, i) => [name, roundTo(mean[i], 4)])),
             uncertain: isUncertain(mean[best], threshold) };
  }
}

// Plays a live HLS URL the way a viewer's browser does: hls.js in headless
// Chromium (playwright-core), muted, for a number of seconds. Every 5 s it
// prints the playhead, the picture size and the decoded frame count; the
// last line is `RESULT {json}` with what a test needs to judge playback.
// hls.js runs in its low-latency mode (LL-HLS parts, blocking reloads).
// Every second while playing it samples the glass-to-glass latency: the
// wall clock minus the EXT-X-PROGRAM-DATE-TIME of the frame being shown
// (`hls.playingDate`), in `latencies` (ms).
// The page is served at the stream's own origin (a routed URL), so the
// node's API needs no CORS headers.
//
// Usage: node play-hls.mjs <tools dir> <chromium> <url> [seconds]
import { createRequire } from 'module';
import { readFileSync } from 'fs';

const [tools, chromiumPath, url, secs = '60'] = process.argv.slice(2);
if (!url) {
  console.error('usage: node play-hls.mjs <tools dir> <chromium> <url> [seconds]');
  process.exit(2);
}
const seconds = Number(secs);
const require = createRequire(tools + '/node_modules/');
const { chromium } = require('playwright-core');
const hls = readFileSync(tools + '/node_modules/hls.js/dist/hls.min.js', 'utf8');
const origin = new URL(url).origin;

const browser = await chromium.launch({
  executablePath: chromiumPath,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--autoplay-policy=no-user-gesture-required'],
});
const samples = [];
let report;
try {
  const page = await browser.newPage();
  await page.route(origin + '/__vilokanam_player.html', (r) => r.fulfill({
    contentType: 'text/html',
    body: `<!doctype html><video id=v muted autoplay></video><script>${hls}</script>`,
  }));
  await page.goto(origin + '/__vilokanam_player.html');
  await page.evaluate((u) => {
    window.log = { errors: [], waiting: 0, fatal: null };
    const v = document.getElementById('v');
    v.addEventListener('waiting', () => window.log.waiting++);
    if (!window.Hls || !Hls.isSupported()) { window.log.fatal = 'hls.js unsupported'; return; }
    // Low-latency mode, and catch-up: up to 1.5x speed while further
    // behind the live edge than the playlist's hold-back (hls.js's own
    // option; a player that starts at a keyframe a GOP back comes forward).
    const h = new Hls({ lowLatencyMode: true, maxLiveSyncPlaybackRate: 1.5 });
    window.hls = h;
    window.latencies = [];
    setInterval(() => {
      const d = h.playingDate;
      if (d && !v.paused && v.readyState >= 3) window.latencies.push(Date.now() - d.getTime());
    }, 1000);
    h.on(Hls.Events.ERROR, (_, d) => {
      window.log.errors.push(d.type + '/' + d.details);
      if (d.fatal) window.log.fatal = d.details;
    });
    h.loadSource(u);
    h.attachMedia(v);
    v.play().catch((e) => window.log.errors.push('play: ' + e));
  }, url);
  const t0 = Date.now();
  while ((Date.now() - t0) / 1000 < seconds) {
    await page.waitForTimeout(5000);
    const s = await page.evaluate(() => {
      const v = document.getElementById('v');
      return { t: v.currentTime, width: v.videoWidth, height: v.videoHeight,
        frames: v.getVideoPlaybackQuality().totalVideoFrames,
        playing: !v.paused && v.readyState >= 3, fatal: window.log.fatal,
        // hls.js's own view: distance to the live edge and its target.
        edge: window.hls ? window.hls.latency : null,
        target: window.hls ? window.hls.targetLatency : null };
    });
    s.at = (Date.now() - t0) / 1000;
    samples.push(s);
    console.log(`${s.at.toFixed(0)}s playhead ${s.t.toFixed(1)} s, ${s.width}x${s.height}, ${s.frames} frames, ${(s.edge ?? 0).toFixed(2)} s from the live edge (target ${(s.target ?? 0).toFixed(2)} s)`);
    if (s.fatal) break;
  }
  const log = await page.evaluate(() => window.log);
  const latencies = await page.evaluate(() => window.latencies || []);
  report = { samples, errors: log.errors, waiting: log.waiting, fatal: log.fatal, latencies };
} catch (e) {
  report = { samples, errors: [String(e)], waiting: 0, fatal: 'script: ' + e.message };
} finally {
  await browser.close();
}
console.log('RESULT ' + JSON.stringify(report));

// Draws ZPL formats to PNG with Zebrash (zpl-renderer-js), an independent ZPL renderer.
// Usage: node render.mjs JOBS.json, where JOBS.json is
//   [{"zpl": "^XA…^XZ", "width_mm": 32.5, "height_mm": 12.7, "dpmm": 8, "out": "a.png"}, …]
// Writes each PNG; prints one line per job.
import fs from 'node:fs';
import { ready } from 'zpl-renderer-js';

const jobs = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const { api } = await ready;
for (const j of jobs) {
  const png = await api.zplToBase64Async(j.zpl, j.width_mm, j.height_mm, j.dpmm);
  fs.writeFileSync(j.out, Buffer.from(png, 'base64'));
  console.log(j.out);
}

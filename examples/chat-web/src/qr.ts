/**
 * QR codes as SVG elements, encoded by `uqr` (no dependencies, any runtime). Used for the
 * safety number's 65-byte QR payload (docs/protocol.md §9) and the device-link code.
 *
 * @module
 */
import { encode } from 'uqr';

const SVG = 'http://www.w3.org/2000/svg';

/** An SVG QR code of `data` (text, or bytes in byte mode), one path for the dark modules. */
export function qrCode(data: string | Uint8Array, label: string): SVGSVGElement {
  const qr = encode(typeof data === 'string' ? data : Array.from(data), { ecc: 'M', border: 2 });
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', `0 0 ${qr.size} ${qr.size}`);
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', label);
  svg.setAttribute('shape-rendering', 'crispEdges');
  svg.classList.add('qr');
  const background = document.createElementNS(SVG, 'rect');
  background.setAttribute('width', String(qr.size));
  background.setAttribute('height', String(qr.size));
  background.setAttribute('fill', '#fff');
  let d = '';
  qr.data.forEach((row, y) =>
    row.forEach((dark, x) => {
      if (dark) d += `M${x} ${y}h1v1h-1z`;
    }),
  );
  const modules = document.createElementNS(SVG, 'path');
  modules.setAttribute('d', d);
  modules.setAttribute('fill', '#0f172a');
  svg.append(background, modules);
  return svg;
}

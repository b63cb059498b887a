/**
 * A small document model (headings, paragraphs, lists, tables of plain text with inline code) and
 * its two renderings, Markdown and a standalone HTML page. The privacy report builds one document
 * and renders it either way, so the two formats cannot say different things. Every value is
 * escaped for its format: configured text (a purpose's description) is data, never markup.
 */

/** Inline content: plain text, or a schema coordinate / identifier shown as code. */
export type Inline = string | { code: string };
export type Text = Inline | Inline[];

export type Block =
  | { kind: 'heading'; level: 1 | 2 | 3 | 4; text: Text }
  | { kind: 'para'; text: Text }
  | { kind: 'list'; items: Text[] }
  | { kind: 'table'; head: string[]; rows: Text[][] };

export interface Doc {
  title: string;
  blocks: Block[];
}

const parts = (t: Text): Inline[] => (Array.isArray(t) ? t : [t]);

// ---------------------------------------------------------------- Markdown

/** Characters Markdown would read as markup (or raw HTML) in running text. */
function mdText(s: string, inTable: boolean): string {
  const out = s.replace(/[\\`*_[\]<>#|~]/g, (c) => (c === '<' ? '&lt;' : c === '>' ? '&gt;' : `\\${c}`));
  return inTable ? out.replace(/\r?\n/g, ' ') : out;
}

/** A paragraph that starts like "1. " or "- " would become a list. */
const paraStart = (s: string) => s.replace(/^(\d+)\. /, '$1\\. ').replace(/^([-+]) /, '\\$1 ');

function mdCode(s: string): string {
  // A code span holding a backtick needs a longer fence; coordinates never do, but configured text might.
  const fence = s.includes('`') ? '``' : '`';
  return `${fence}${s.includes('`') ? ` ${s} ` : s}${fence}`;
}

function mdInline(t: Text, inTable = false): string {
  return parts(t).map((p) => (typeof p === 'string' ? mdText(p, inTable) : mdCode(inTable ? p.code.replace(/\|/g, '\\|') : p.code))).join('');
}

export function toMarkdown(doc: Doc): string {
  const out: string[] = [];
  for (const b of doc.blocks) {
    switch (b.kind) {
      case 'heading':
        out.push(`${'#'.repeat(b.level)} ${mdInline(b.text)}`);
        break;
      case 'para':
        out.push(paraStart(mdInline(b.text)));
        break;
      case 'list':
        out.push(b.items.map((i) => `- ${mdInline(i)}`).join('\n'));
        break;
      case 'table':
        out.push(
          [`| ${b.head.map((h) => mdText(h, true)).join(' | ')} |`, `|${b.head.map(() => ' --- |').join('')}`, ...b.rows.map((r) => `| ${r.map((c) => mdInline(c, true) || ' ').join(' | ')} |`)].join('\n'),
        );
        break;
    }
  }
  return out.join('\n\n') + '\n';
}

// ---------------------------------------------------------------- HTML

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function htmlInline(t: Text): string {
  return parts(t).map((p) => (typeof p === 'string' ? escapeHtml(p) : `<code>${escapeHtml(p.code)}</code>`)).join('');
}

/** Inline styles only: the page is one file, with no external stylesheet, font or script. */
const STYLE = `body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.5;color:#1b1b1b}
table{border-collapse:collapse;margin:.5rem 0 1rem}th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f3f3}code{font-size:.9em;background:#f6f6f6;padding:0 .2em}h1{border-bottom:2px solid #333}h2{margin-top:2rem;border-bottom:1px solid #ccc}`;

export function toHtml(doc: Doc): string {
  const body: string[] = [];
  for (const b of doc.blocks) {
    switch (b.kind) {
      case 'heading':
        body.push(`<h${b.level}>${htmlInline(b.text)}</h${b.level}>`);
        break;
      case 'para':
        body.push(`<p>${htmlInline(b.text)}</p>`);
        break;
      case 'list':
        body.push(`<ul>\n${b.items.map((i) => `<li>${htmlInline(i)}</li>`).join('\n')}\n</ul>`);
        break;
      case 'table':
        body.push(
          `<table>\n<thead><tr>${b.head.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr></thead>\n<tbody>\n${b.rows
            .map((r) => `<tr>${r.map((c) => `<td>${htmlInline(c)}</td>`).join('')}</tr>`)
            .join('\n')}\n</tbody>\n</table>`,
        );
        break;
    }
  }
  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    // Nothing may load or run: the page is text and its inline style.
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(doc.title)}</title>`,
    `<style>${STYLE}</style>`,
    '</head>',
    '<body>',
    ...body,
    '</body>',
    '</html>',
    '',
  ].join('\n');
}

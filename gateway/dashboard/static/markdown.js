// Lesson Markdown as DOM nodes: headings, paragraphs, lists, quotes, code blocks, tables' text, and inline
// code, bold, italics and http(s) links. A subset on purpose: everything is text in elements made here, so no
// markup in a lesson can run, and anything it does not know shows as the text it is.
import { h } from './dom.js';

// An underscore inside a word (GEMINI_API_KEY) is text, as in CommonMark: `_` emphasis touches no letter or digit outside.
const INLINE =
  /(`[^`]+`)|(\*\*[^*]+\*\*)|(\*[^*\s][^*]*\*|(?<![\p{L}\p{N}_])_[^_\s][^_]*_(?![\p{L}\p{N}_]))|(\[[^\]]+\]\([^)\s]+\))/u;

export function inline(text) {
  const nodes = [];
  let rest = text;
  while (rest) {
    const match = INLINE.exec(rest);
    if (!match) {
      nodes.push(rest);
      break;
    }
    if (match.index) nodes.push(rest.slice(0, match.index));
    const [token] = match;
    if (match[1]) nodes.push(h('code', null, token.slice(1, -1)));
    else if (match[2]) nodes.push(h('strong', null, inline(token.slice(2, -2))));
    else if (match[3]) nodes.push(h('em', null, inline(token.slice(1, -1))));
    else {
      const [, label, href] = /^\[([^\]]+)\]\(([^)\s]+)\)$/.exec(token);
      nodes.push(/^https?:\/\//i.test(href) ? h('a', { href, rel: 'noopener noreferrer' }, inline(label)) : token);
    }
    rest = rest.slice(match.index + token.length);
  }
  return nodes;
}

export function markdown(source) {
  const lines = String(source || '').replace(/\r\n?/g, '\n').split('\n');
  const blocks = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    const fence = /^\s*(```|~~~)/.exec(line);
    if (fence) {
      const code = [];
      i += 1;
      while (i < lines.length && !lines[i].trimStart().startsWith(fence[1])) code.push(lines[i++]);
      i += 1;
      blocks.push(h('pre', null, h('code', null, code.join('\n'))));
      continue;
    }
    const heading = /^(#{1,6})\s+(.*)$/.exec(line);
    if (heading) {
      // Lessons sit under the page's own headings: their levels start at h3.
      blocks.push(h(`h${Math.min(heading[1].length + 2, 6)}`, null, inline(heading[2].replace(/\s#+\s*$/, ''))));
      i += 1;
      continue;
    }
    const listItem = /^\s*([-*+]|\d+[.)])\s+(.*)$/;
    if (listItem.test(line)) {
      const ordered = /^\s*\d/.test(line);
      const items = [];
      while (i < lines.length && listItem.test(lines[i])) items.push(h('li', null, inline(listItem.exec(lines[i++])[2])));
      blocks.push(h(ordered ? 'ol' : 'ul', null, items));
      continue;
    }
    if (/^\s*>/.test(line)) {
      const quote = [];
      while (i < lines.length && /^\s*>/.test(lines[i])) quote.push(lines[i++].replace(/^\s*>\s?/, ''));
      blocks.push(h('blockquote', null, markdown(quote.join('\n'))));
      continue;
    }
    if (!line.trim()) {
      i += 1;
      continue;
    }
    const paragraph = [];
    while (i < lines.length && lines[i].trim() && !/^(#{1,6}\s|\s*(```|~~~)|\s*>|\s*([-*+]|\d+[.)])\s)/.test(lines[i])) {
      paragraph.push(lines[i++].trim());
    }
    if (!paragraph.length) paragraph.push(lines[i++].trim());
    blocks.push(h('p', null, inline(paragraph.join(' '))));
  }
  return blocks;
}

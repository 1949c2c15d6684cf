"""What a person sees wrong on a page, measured in the browser: a tick box or a radio button
far from its words, something wider than its card or the window, an icon drawn as an emoji
(an empty box where no emoji font is installed) or not drawn at all."""

from __future__ import annotations

from playwright.sync_api import Page

WIDTHS = {"desktop": 1280, "phone": 360}
HEIGHT = {"desktop": 900, "phone": 740}
MAX_GAP = 24  # px between a tick box and the first letter of its label

# Returns a list of sentences, one per problem (empty when the page looks right).
_MEASURE = r"""
(maxGap) => {
  const problems = [];
  const root = document.documentElement;
  const vw = root.clientWidth;
  const px = (n) => Math.round(n) + "px";
  const shown = (el) => {
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && el.checkVisibility({contentVisibilityAuto: true, visibilityProperty: true})
      && !el.closest(".visually-hidden, .skip");
  };
  const name = (el) => {
    let text = el.tagName.toLowerCase();
    if (el.id) text += "#" + el.id;
    else if (typeof el.className === "string" && el.className.trim()) text += "." + el.className.trim().split(/\s+/).join(".");
    const words = (el.innerText || el.value || "").trim().replace(/\s+/g, " ").slice(0, 40);
    return words ? `${text} ("${words}")` : text;
  };
  // Inside a box that scrolls sideways on purpose (a wide table on a phone), overflow is fine.
  const inScroller = (el) => {
    for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      const o = getComputedStyle(p).overflowX;
      if (o === "auto" || o === "scroll") return true;
    }
    return false;
  };

  if (root.scrollWidth > vw) problems.push(`the page is ${px(root.scrollWidth)} wide in a ${px(vw)} window`);

  for (const input of document.querySelectorAll("input[type=checkbox], input[type=radio]")) {
    if (!shown(input)) continue;
    const label = input.labels && input.labels[0];
    if (!label) { problems.push(`${name(input)} has no label`); continue; }
    const range = document.createRange();
    range.selectNodeContents(label);
    const lines = Array.from(range.getClientRects()).filter((r) => r.width > 0 && r.height > 0);
    if (!lines.length) { problems.push(`the label of ${name(input)} shows no text`); continue; }
    const box = input.getBoundingClientRect();
    const left = Math.min(...lines.map((r) => r.left));
    const top = Math.min(...lines.map((r) => r.top));
    const first = lines.filter((r) => r.top < top + 4);
    const firstBottom = Math.max(...first.map((r) => r.bottom));
    const gap = left - box.right;
    if (box.width > 40) problems.push(`${name(input)} is drawn ${px(box.width)} wide`);
    if (gap < 0 || gap > maxGap) problems.push(`${name(label)}: its text starts ${px(gap)} from its ${input.type}`);
    if (!(top < box.bottom && firstBottom > box.top)) problems.push(`${name(label)}: its first line is not level with its ${input.type}`);
    const textWidth = lines.reduce((sum, r) => sum + r.width, 0);
    const room = label.getBoundingClientRect().width;
    if (room < Math.min(textWidth, 160)) problems.push(`${name(label)} is squeezed into ${px(room)} for ${px(textWidth)} of text`);
  }

  const boxes = ".card, .console-main, fieldset, form, section, figure, dialog[open], dl, .choice, .action-bar, .search";
  for (const el of document.querySelectorAll(boxes)) {
    if (!shown(el) || inScroller(el)) continue;
    if (el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).overflowX !== "auto")
      problems.push(`${name(el)} holds ${px(el.scrollWidth)} of content in ${px(el.clientWidth)}`);
    const parent = el.parentElement.getBoundingClientRect();
    const r = el.getBoundingClientRect();
    if (r.right > parent.right + 1 || r.left < parent.left - 1)
      problems.push(`${name(el)} sticks out of its container (${px(r.left)}..${px(r.right)} in ${px(parent.left)}..${px(parent.right)})`);
  }
  const reported = new Set();
  for (const el of document.body.querySelectorAll("*")) {
    if (!shown(el) || inScroller(el) || el.closest("svg") && el.tagName.toLowerCase() !== "svg") continue;
    const r = el.getBoundingClientRect();
    if (r.right > vw + 1 || r.left < -1) {
      if (!reported.has(document)) problems.push(`${name(el)} reaches past the window (${px(r.left)}..${px(r.right)} in ${px(vw)})`);
      reported.add(document);  // its ancestors and descendants say the same
    }
    // Within the padding of its card (or fieldset...), not over it.
    const box = el.parentElement.closest(boxes);
    if (!box || reported.has(box)) continue;
    const b = box.getBoundingClientRect(), s = getComputedStyle(box);
    const right = b.right - parseFloat(s.borderRightWidth) - parseFloat(s.paddingRight);
    const left = b.left + parseFloat(s.borderLeftWidth) + parseFloat(s.paddingLeft);
    if (r.right > right + 1 || r.left < left - 1) {
      problems.push(`${name(el)} sticks out of ${name(box)} (${px(r.left)}..${px(r.right)} in ${px(left)}..${px(right)})`);
      reported.add(box);
    }
  }

  const emoji = /\p{Extended_Pictographic}/u;
  const said = [document.title, document.body.innerText,
                ...Array.from(document.querySelectorAll("[aria-label], [title]"), (el) => (el.getAttribute("aria-label") || "") + (el.getAttribute("title") || ""))];
  for (const text of said) {
    const m = text.match(emoji);
    if (m) { problems.push(`an emoji (${m[0]}) that shows as an empty box without an emoji font`); break; }
  }
  for (const button of document.querySelectorAll("button")) {
    if (!shown(button) || button.innerText.trim()) continue;
    const icon = button.querySelector("svg");
    const r = icon && icon.getBoundingClientRect();
    if (!(r && r.width > 0 && r.height > 0)) problems.push(`${name(button)} shows neither words nor an icon`);
    if (!button.getAttribute("aria-label")) problems.push(`${name(button)} has no name for screen readers`);
  }
  for (const icon of document.querySelectorAll("svg.icon")) {
    const r = icon.getBoundingClientRect();
    if (!(r.width > 0 && r.height > 0)) problems.push(`an icon in ${name(icon.parentElement)} is not drawn`);
  }
  return problems;
}
"""


def problems(page: Page) -> list[str]:
    return page.evaluate(_MEASURE, MAX_GAP)

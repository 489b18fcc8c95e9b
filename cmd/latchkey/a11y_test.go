package main

import (
	"context"
	"os"
	"sync"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// Accessibility checks for the browser tests: every page Latchkey shows a
// person (the hosted pages and the developer console) must meet WCAG 2.1
// AA. axe-core checks what it can; two checks it does not make are here
// too: focus indicators with 3:1 contrast against what surrounds them
// (1.4.11), and text that reflows at a phone's width (1.4.10) without a
// word broken over two lines.

// axeSource is axe-core (testdata/axe, see its README), read once.
var axeSource = sync.OnceValues(func() ([]byte, error) { return os.ReadFile("testdata/axe/axe.min.js") })

// wcagTags are the axe-core rules of WCAG 2.1 levels A and AA.
const wcagTags = `['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']`

// focusCheck focuses every focusable element of the page and returns, for
// each whose focus indicator fails WCAG 2.1 1.4.11 (non-text contrast), a
// line saying why: no outline, one thinner than 2px, or one with less
// than 3:1 contrast against the background it is drawn on (the outline is
// outside the element, so that of its parent).
const focusCheck = `(() => {
  const rgba = c => { const m = (c.match(/[\d.]+/g) || []).map(Number); return {c: m.slice(0, 3), a: m.length > 3 ? m[3] : 1}; };
  const lum = c => { const [r, g, b] = c.map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); }); return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  const ratio = (x, y) => { const [a, b] = [lum(x), lum(y)].sort((p, q) => q - p); return (a + 0.05) / (b + 0.05); };
  const bg = el => { for (let e = el; e; e = e.parentElement) { const c = rgba(getComputedStyle(e).backgroundColor); if (c.a > 0) return c.c; } return [255, 255, 255]; };
  const name = el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (el.textContent.trim() ? ' "' + el.textContent.trim().slice(0, 30) + '"' : '');
  const els = [...document.querySelectorAll('a[href], button, input:not([type=hidden]), select, textarea, summary, [tabindex]')]
    .filter(e => !e.disabled && e.getClientRects().length > 0);
  const out = [];
  let n = 0;
  for (const el of els) {
    el.focus();
    if (document.activeElement !== el) continue;
    n++;
    const s = getComputedStyle(el);
    const r = ratio(rgba(s.outlineColor).c, bg(el.parentElement));
    if (s.outlineStyle === 'none' || parseFloat(s.outlineWidth) < 2 || r < 3) {
      out.push(name(el) + ': outline ' + s.outlineStyle + ' ' + s.outlineWidth + ' ' + s.outlineColor + ', ' + r.toFixed(2) + ':1');
    }
  }
  // Leave the next Tab where a fresh page starts it: at the top.
  const start = document.createElement('span');
  start.tabIndex = -1;
  document.body.prepend(start);
  start.focus();
  start.remove();
  window.scrollTo(0, 0);
  return {focused: n, failures: out};
})()`

// brokenWords returns the words of the page's text (runs of letters
// between spaces, such as "client" or "encrypted") that the layout splits
// over two lines. Ids and tokens may wrap anywhere; words may not.
const brokenWords = `(() => {
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node; (node = walker.nextNode());) {
    for (const m of node.textContent.matchAll(/\S+/g)) {
      const word = m[0].replace(/[.,:;!?)”’"]+$/, '').replace(/^[(“‘"]+/, '');
      if (!/^[A-Za-z]{2,}$/.test(word)) continue;
      const start = m.index + m[0].indexOf(word);
      const r = document.createRange();
      r.setStart(node, start);
      r.setEnd(node, start + word.length);
      const tops = new Set([...r.getClientRects()].filter(x => x.width > 0).map(x => Math.round(x.top)));
      if (tops.size > 1) out.push(word);
    }
  }
  return out;
})()`

type focusResult struct {
	Focused  int      `json:"focused"`
	Failures []string `json:"failures"`
}

// a11y checks the page as WCAG 2.1 AA asks: axe-core finds no violation,
// every focus indicator has 3:1 contrast, and at a phone's width no word
// is broken over two lines. It returns how many elements took the focus.
func (c *chrome) a11y(name string) int {
	c.t.Helper()
	src, err := axeSource()
	if err != nil {
		c.t.Fatalf("reading axe-core: %v", err)
	}
	if !eval[bool](c, `typeof window.axe === 'object'`) {
		// Evaluated through DevTools, which the page's CSP (no script)
		// does not govern; the page itself still runs none.
		c.do("loading axe-core", chromedp.Evaluate[chromedp.Void](string(src)))
	}
	violations, err := chromedp.Run(c.ctx, chromedp.Evaluate[[]string](`axe.run(document, {runOnly: {type: 'tag', values: `+wcagTags+`}, resultTypes: ['violations']})
  .then(r => r.violations.map(v => v.id + ' (' + v.impact + '): ' + v.help + ' at ' + v.nodes.map(n => n.target.join(' ')).join(', ')))`, chromedp.EvalAwaitPromise))
	if err != nil {
		c.t.Fatalf("%s: running axe-core: %v", name, err)
	}
	for _, v := range violations {
		c.t.Errorf("%s: axe-core: %s", name, v)
	}
	// :focus matches only in a focused window, which a headless one is
	// not unless told to pretend.
	c.do("emulating a focused window", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetFocusEmulationEnabled, emulation.SetFocusEmulationEnabledParams{Enabled: true})
		return err
	}))
	focus := eval[focusResult](c, focusCheck)
	for _, f := range focus.Failures {
		c.t.Errorf("%s: focus indicator below 3:1 or missing: %s", name, f)
	}
	c.do("resizing to a phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateTouch))
	if words := eval[[]string](c, brokenWords); len(words) > 0 {
		c.t.Errorf("%s: words broken over two lines at a phone's width: %q", name, words)
	}
	c.do("resetting the viewport", chromedp.EmulateViewport(1280, 900))
	return focus.Focused
}

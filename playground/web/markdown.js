// Discord's markdown, drawn as DOM nodes: what the bot's messages and people's use.
// window.renderMarkdown(text, options) returns a DocumentFragment; options.preview gives the one
// line of a reply preview. window.markdown.setLookup({user, role, channel}) names <@id>s.
// Safety rule for this file: text only ever reaches the page through createTextNode/textContent;
// links are http(s) only and open with rel="noopener noreferrer".
"use strict";

(() => {
  let lookup = { user: () => null, role: () => null, channel: () => null };

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  // ------------------------------------------------------------------------- timestamps

  const STYLES = {
    t: { hour: "2-digit", minute: "2-digit" },
    T: { hour: "2-digit", minute: "2-digit", second: "2-digit" },
    d: { day: "2-digit", month: "2-digit", year: "numeric" },
    D: { day: "numeric", month: "long", year: "numeric" },
    f: { day: "numeric", month: "long", year: "numeric", hour: "2-digit", minute: "2-digit" },
    F: {
      weekday: "long",
      day: "numeric",
      month: "long",
      year: "numeric",
      hour: "2-digit",
      minute: "2-digit",
    },
  };
  const UNITS = [
    ["year", 365 * 24 * 3600],
    ["month", 30 * 24 * 3600],
    ["day", 24 * 3600],
    ["hour", 3600],
    ["minute", 60],
    ["second", 1],
  ];

  // "in 5 minutes", "2 days ago": the largest unit that fits, as Discord writes <t:...:R>.
  function relativeTime(date, now) {
    const seconds = Math.round((date.getTime() - now.getTime()) / 1000);
    const format = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
    for (const [unit, size] of UNITS) {
      if (Math.abs(seconds) >= size || unit === "second") {
        return format.format(Math.trunc(seconds / size), unit);
      }
    }
    return "";
  }

  // <t:UNIX:STYLE> as the reader's local time, in Discord's styles (f when none is given).
  function formatTimestamp(unix, style, now) {
    const date = new Date(unix * 1000);
    if (Number.isNaN(date.getTime())) return null;
    if (style === "R") return relativeTime(date, now || new Date());
    return date.toLocaleString(undefined, STYLES[style || "f"]);
  }

  function timestampNode(unix, style) {
    const text = formatTimestamp(Number(unix), style);
    if (text === null) return null;
    const date = new Date(Number(unix) * 1000);
    const node = el("time", "md-timestamp", text);
    node.dateTime = date.toISOString();
    node.title = date.toLocaleString(undefined, STYLES.F);
    return node;
  }

  // ------------------------------------------------------------------------- inline

  function safeUrl(text) {
    try {
      const url = new URL(text);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (_) {
      return null;
    }
  }

  function link(url, children) {
    const node = el("a", "md-link");
    node.href = url;
    node.target = "_blank";
    node.rel = "noopener noreferrer";
    node.title = url;
    if (typeof children === "string") node.textContent = children;
    else node.appendChild(children);
    return node;
  }

  function wrap(tag, className, inner, options) {
    const node = el(tag, className);
    node.appendChild(renderInline(inner, options));
    return node;
  }

  // Each rule matches at the current position (sticky) and returns a node, or null to let the
  // text through as it is.
  const RULES = [
    [/\\([^A-Za-z0-9\s])/y, (m) => document.createTextNode(m[1])],
    [/(`+)([\s\S]*?[^`])\1(?!`)/y, (m) => el("code", "inline-code", m[2].trim() || m[2])],
    [/<t:(-?\d{1,13})(?::([tTdDfFR]))?>/y, (m) => timestampNode(m[1], m[2])],
    [
      /<@!?(\d{1,20})>/y,
      (m) => el("span", "mention", `@${lookup.user(m[1]) || "unknown-user"}`),
    ],
    [/<@&(\d{1,20})>/y, (m) => el("span", "mention", `@${lookup.role(m[1]) || "unknown-role"}`)],
    [/<#(\d{1,20})>/y, (m) => el("span", "mention", `#${lookup.channel(m[1]) || "unknown"}`)],
    [/<(https?:\/\/[^\s>]+)>/y, (m) => (safeUrl(m[1]) ? link(safeUrl(m[1]), m[1]) : null)],
    [
      /\[([^\[\]\n]+)\]\(\s*<?([^\s)>]+)>?\s*\)/y,
      (m, options) => {
        const url = safeUrl(m[2]);
        if (!url) return null;
        return link(url, renderInline(m[1], { ...options, links: false }));
      },
    ],
    [
      /https?:\/\/[^\s<]*[^\s<.,:;"'\)\]!?*_~|]/y,
      (m, options) => (options.links !== false && safeUrl(m[0]) ? link(safeUrl(m[0]), m[0]) : null),
    ],
    [/\*\*([\s\S]+?)\*\*(?!\*)/y, (m, options) => wrap("strong", null, m[1], options)],
    [/__([\s\S]+?)__(?!_)/y, (m, options) => wrap("u", null, m[1], options)],
    [/\*(?=\S)([\s\S]*?\S)\*(?!\*)/y, (m, options) => wrap("em", null, m[1], options)],
    [/_([^_]+?)_(?![A-Za-z0-9_])/y, (m, options) => wrap("em", null, m[1], options)],
    [/~~([\s\S]+?)~~/y, (m, options) => wrap("s", null, m[1], options)],
    [/\|\|([\s\S]+?)\|\|/y, (m, options) => spoiler(m[1], options)],
  ];
  const SPECIAL = /[\\`<\[h*_~|]/g;

  function spoiler(inner, options) {
    const node = wrap("span", "spoiler", inner, options);
    node.title = "Spoiler: click to show";
    node.addEventListener("click", () => node.classList.add("shown"), { once: true });
    return node;
  }

  // Inline markdown of `text` as a fragment of text nodes and elements.
  function renderInline(text, options = {}) {
    const out = document.createDocumentFragment();
    let plain = "";
    let i = 0;
    const flush = () => {
      if (plain) out.appendChild(document.createTextNode(plain));
      plain = "";
    };
    while (i < text.length) {
      let node = null;
      let length = 0;
      // "_x_" starts only where a word does not continue: snake_case_names stay text.
      const midWord = text[i] === "_" && i > 0 && /[A-Za-z0-9]/.test(text[i - 1]);
      for (const [pattern, make] of midWord ? [] : RULES) {
        pattern.lastIndex = i;
        const m = pattern.exec(text);
        if (!m) continue;
        node = make(m, options);
        if (node) {
          length = m[0].length;
          break;
        }
      }
      if (node) {
        flush();
        out.appendChild(node);
        i += length;
        continue;
      }
      // Plain text up to the next character that could start a rule.
      SPECIAL.lastIndex = i + 1;
      const next = SPECIAL.exec(text);
      const end = next ? next.index : text.length;
      plain += text.slice(i, end);
      i = end;
    }
    flush();
    return out;
  }

  // ------------------------------------------------------------------------- blocks

  // ```lang\ncode``` (the first line names a language when it is one word), split from the text
  // around it.
  const FENCE = /```(?:([A-Za-z0-9_+#.-]+)\n)?\n?([\s\S]*?)\n?```/g;

  function segments(text) {
    const found = [];
    let last = 0;
    for (const m of text.matchAll(FENCE)) {
      if (!m[2].trim() && !m[1]) continue; // "``````" is text on Discord too
      found.push({ text: text.slice(last, m.index) });
      found.push({ code: m[2], language: m[1] || "" });
      last = m.index + m[0].length;
    }
    found.push({ text: text.slice(last) });
    return found;
  }

  function codeBlock(code, language) {
    const pre = el("pre", "code-block");
    const node = el("code", null, code);
    if (language) node.dataset.language = language;
    pre.appendChild(node);
    return pre;
  }

  function renderLines(text, options, out) {
    const lines = text.split("\n");
    let list = null;
    let quote = null;
    for (let index = 0; index < lines.length; index++) {
      const line = lines[index];
      if (line.startsWith(">>> ")) {
        quote = el("blockquote", "quote");
        quote.appendChild(renderInline([line.slice(4), ...lines.slice(index + 1)].join("\n"), options));
        out.appendChild(quote);
        return;
      }
      const quoted = line.startsWith("> ") || line === ">";
      const target = quoted ? quote || (quote = out.appendChild(el("blockquote", "quote"))) : out;
      if (!quoted) quote = null;
      const body = quoted ? line.replace(/^> ?/, "") : line;
      const item = /^\s*[-*] (.*)$/.exec(body);
      if (item && !body.startsWith("-# ")) {
        if (!list || list.parentNode !== target) list = target.appendChild(el("ul", "md-list"));
        list.appendChild(wrap("li", null, item[1], options));
        continue;
      }
      list = null;
      let node;
      const heading = /^(#{1,3}) (.*)$/.exec(body);
      if (body.startsWith("-# ")) {
        node = wrap("div", "subtext", body.slice(3), options);
      } else if (heading) {
        node = wrap("div", `heading h${heading[1].length}`, heading[2], options);
      } else {
        node = el("div", "line");
        if (body === "") node.appendChild(document.createElement("br"));
        else node.appendChild(renderInline(body, options));
      }
      target.appendChild(node);
    }
  }

  // The one line of a reply preview: blocks flattened, formatting kept.
  function renderPreview(text) {
    const out = document.createDocumentFragment();
    for (const part of segments(text)) {
      if (part.code !== undefined) {
        out.appendChild(el("code", "inline-code", part.code.replace(/\s+/g, " ").trim()));
        out.appendChild(document.createTextNode(" "));
        continue;
      }
      const flat = part.text
        .split("\n")
        .map((line) => line.replace(/^(?:>>> |> |-# |#{1,3} )/, ""))
        .join(" ");
      out.appendChild(renderInline(flat, { preview: true }));
    }
    return out;
  }

  function renderMarkdown(text, options = {}) {
    const source = String(text ?? "").replace(/\r\n?/g, "\n"); // a form sends line breaks as CRLF
    if (options.preview) return renderPreview(source);
    const out = document.createDocumentFragment();
    const parts = segments(source);
    parts.forEach((part, index) => {
      if (part.code !== undefined) {
        out.appendChild(codeBlock(part.code, part.language));
        return;
      }
      let body = part.text;
      if (index > 0) body = body.replace(/^\n/, ""); // the line break after a closing fence
      if (index < parts.length - 1) body = body.replace(/\n$/, ""); // and before an opening one
      if (body || parts.length === 1) renderLines(body, options, out);
    });
    return out;
  }

  window.markdown = {
    render: renderMarkdown,
    renderInline,
    formatTimestamp,
    setLookup(names) {
      lookup = { ...lookup, ...names };
    },
  };
  window.renderMarkdown = renderMarkdown;
})();

// The playground page: a Discord-like channel talking to the local look-alike.
// Safety rule for this file: text from messages, file names and server errors only ever goes
// into the page through textContent / createTextNode, never parsed as HTML.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  // This run's token, given to this page only: the API and the WebSocket refuse requests without it.
  const pageToken = document.querySelector('meta[name="playground-token"]').content;
  const els = {
    scroller: $("scroller"),
    messages: $("messages"),
    composer: $("composer"),
    text: $("text"),
    fileInput: $("file-input"),
    attach: $("attach"),
    pending: $("pending"),
    replyBar: $("reply-bar"),
    replyName: $("reply-name"),
    replyCancel: $("reply-cancel"),
    typing: $("typing"),
    error: $("composer-error"),
    samples: $("samples"),
    connection: $("connection"),
    popup: $("command-popup"),
    menu: $("menu"),
    lightbox: $("lightbox"),
    lightboxImg: $("lightbox-img"),
    lightboxName: $("lightbox-name"),
    lightboxOpen: $("lightbox-open"),
    dropOverlay: $("drop-overlay"),
    memberBot: $("member-bot"),
    onlineCount: $("online-count"),
    people: $("people"),
    postingAs: $("posting-as"),
    meAvatar: $("me-avatar"),
    newMessages: $("new-messages"),
    newMessagesCount: $("new-messages-count"),
  };
  const POSTING_AS_KEY = "jedisith-playground.posting-as";

  const state = {
    me: null, // the person the page acts as (one of people)
    as: savedPostingAs() || "padawan", // their username, kept across reloads
    people: [], // who the page can act as: {id, username, name, title, roles}
    bot: null,
    commands: [],
    limits: { max_upload_bytes: 10 * 1024 * 1024, max_files: 10, max_content: 2000 },
    messages: new Map(), // id -> view
    pending: [], // {file, url}
    replyTo: null, // message view
    typing: new Map(), // user id -> {name, timer}
    stick: true, // the newest message is kept in view
    unseen: 0, // messages from others that arrived while the person had scrolled up
  };

  // ------------------------------------------------------------------------------ helpers

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function formatSize(bytes) {
    if (bytes < 1024) return `${bytes} B`;
    if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
    return `${(bytes / 1024 / 1024).toFixed(2)} MB`;
  }

  function formatTime(iso) {
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return "";
    const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    const today = new Date();
    return date.toDateString() === today.toDateString()
      ? `Today at ${time}`
      : `${date.toLocaleDateString()} ${time}`;
  }

  function initials(user) {
    if (!user) return "?";
    if (user.bot) return "JS";
    return (user.name || user.username || "?").slice(0, 1).toUpperCase();
  }

  function avatarClass(user) {
    if (user && user.bot) return "avatar-bot";
    if (user && (user.username === "master" || user.username === "youngling")) {
      return `avatar-${user.username}`;
    }
    return "avatar-me";
  }

  function avatar(user, small) {
    const node = el("div", `avatar ${avatarClass(user)}`, initials(user));
    if (small) node.classList.add("tiny");
    node.setAttribute("aria-hidden", "true");
    return node;
  }

  function showError(text) {
    els.error.textContent = text;
    els.error.hidden = !text;
    if (text) {
      clearTimeout(showError.timer);
      showError.timer = setTimeout(() => showError(""), 8000);
    }
  }

  function savedPostingAs() {
    try {
      return localStorage.getItem(POSTING_AS_KEY);
    } catch (_) {
      return null; // storage refused (a private window): the page still works
    }
  }

  // ----------------------------------------------------------------------------- scrolling

  // The newest message stays in view (pinned) whatever changes height: a message, a late image,
  // the composer growing with attachments or a reply bar. Only the person unpins it, by
  // scrolling up; then messages from others show the "new messages" bar, as on Discord.
  const scrollInput = { at: -Infinity, dragging: false };

  function nearBottom() {
    const s = els.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < 40;
  }

  function userScrolled() {
    return scrollInput.dragging || performance.now() - scrollInput.at < 1000;
  }

  function pin() {
    state.stick = true;
    state.unseen = 0;
    els.newMessages.hidden = true;
  }

  function keepPinned() {
    if (state.stick) els.scroller.scrollTop = els.scroller.scrollHeight;
  }

  function scrollToBottom(force) {
    if (force) pin();
    keepPinned();
  }

  function noteUnseen() {
    state.unseen += 1;
    els.newMessagesCount.textContent =
      state.unseen === 1 ? "1 new message" : `${state.unseen} new messages`;
    els.newMessages.hidden = false;
  }

  function onScroll() {
    if (nearBottom()) pin();
    else if (userScrolled()) state.stick = false;
    // Otherwise the browser moved it (scroll anchoring, a focus): pinned stays pinned, and the
    // resize observer below puts the newest message back in view at the next change.
  }

  // ----------------------------------------------------------------------------- messages

  // A reply's preview of the message it answers: one line, formatted as the message is.
  function previewContent(ref) {
    const node = el("span", "ref-content");
    if (ref.content) node.appendChild(window.renderMarkdown(ref.content.slice(0, 300), { preview: true }));
    else node.textContent = ref.attachments ? "Click to see attachment" : "Original message was deleted";
    return node;
  }

  function renderReference(view) {
    if (view.interaction && view.interaction.type !== 3) {
      const box = el("div", "reference interaction-ref");
      const user = view.interaction.user;
      box.appendChild(avatar(user, true));
      box.appendChild(el("span", "ref-author", user ? user.name : "Someone"));
      box.appendChild(el("span", "ref-used", " used "));
      const name = view.interaction.command_type === 1 ? `/${view.interaction.name}` : view.interaction.name;
      const cmd = el("span", "ref-command", name);
      box.appendChild(cmd);
      if (view.interaction.target_message_id) {
        box.classList.add("clickable");
        box.addEventListener("click", () => jumpTo(view.interaction.target_message_id));
      }
      return box;
    }
    if (view.reply_to) {
      const ref = view.reply_to;
      const box = el("div", "reference clickable");
      box.appendChild(avatar(ref.author, true));
      box.appendChild(el("span", "ref-author", ref.author ? `@${ref.author.name}` : "@unknown"));
      box.appendChild(previewContent(ref));
      box.addEventListener("click", () => jumpTo(ref.id));
      return box;
    }
    return null;
  }

  function renderAttachments(view) {
    const wrap = el("div", "attachments");
    const images = view.attachments.filter((a) => a.image);
    if (images.length > 1) wrap.classList.add("gallery");
    for (const a of view.attachments) {
      if (a.image) {
        const button = el("button", "image-button");
        button.type = "button";
        button.title = `${a.filename} (click to open full size)`;
        const img = document.createElement("img");
        img.className = "attachment-image";
        img.src = a.url;
        img.alt = a.filename;
        img.decoding = "async";
        if (a.width && a.height) {
          img.width = a.width;
          img.height = a.height;
        }
        img.addEventListener("load", keepPinned);
        // Named like an image but not one: its file card, as Discord shows it.
        img.addEventListener("error", () => button.replaceWith(fileChip(a.filename, a.size, a.url)));
        button.appendChild(img);
        button.addEventListener("click", () => openLightbox(a));
        wrap.appendChild(button);
      } else {
        wrap.appendChild(fileChip(a.filename, a.size, a.url));
      }
    }
    return wrap;
  }

  // Buttons, styled like Discord's; a click goes to the bot as whoever the page posts as.
  function renderComponents(view) {
    const wrap = el("div", "components");
    for (const row of view.components) {
      const bar = el("div", "action-row");
      for (const b of row) {
        let node;
        if (b.url) {
          node = el("a", "button button-link");
          node.href = b.url;
          node.target = "_blank";
          node.rel = "noopener noreferrer";
        } else {
          node = el("button", `button button-${b.style}`);
          node.type = "button";
          node.disabled = b.disabled || !b.custom_id;
          if (b.custom_id) node.dataset.customId = b.custom_id;
          node.addEventListener("click", () => clickButton(view.id, b.custom_id, node));
        }
        if (b.emoji) node.appendChild(el("span", "button-emoji", b.emoji));
        if (b.label) node.appendChild(el("span", "button-label", b.label));
        if (b.url) node.appendChild(el("span", "button-external", "↗"));
        bar.appendChild(node);
      }
      wrap.appendChild(bar);
    }
    return wrap;
  }

  async function clickButton(messageId, customId, node) {
    node.classList.add("loading");
    node.disabled = true;
    const form = new FormData();
    form.append("message_id", messageId);
    form.append("custom_id", customId);
    form.append("as", state.as);
    const li = document.getElementById(`message-${messageId}`);
    li?.querySelector(".interaction-failed")?.remove();
    try {
      const answer = await postForm("/playground/api/click", form);
      if (answer.response_type === null) {
        const current = document.getElementById(`message-${messageId}`);
        current?.querySelector(".message-body")?.appendChild(
          el("div", "interaction-failed", "This interaction failed"),
        );
      }
    } catch (error) {
      showError(error.message);
    } finally {
      if (node.isConnected) {
        node.classList.remove("loading");
        node.disabled = false;
      }
    }
  }

  function renderActions(view) {
    const bar = el("div", "actions");
    const reply = el("button", "action action-reply", "↩ Reply");
    reply.type = "button";
    reply.title = "Reply";
    reply.setAttribute("aria-label", "Reply");
    reply.addEventListener("click", () => startReply(view.id));
    bar.appendChild(reply);
    if (view.attachments.length) {
      const apps = el("button", "action action-apps", "Apps ▾");
      apps.type = "button";
      apps.title = "Apps";
      apps.setAttribute("aria-label", "Apps");
      apps.setAttribute("aria-haspopup", "menu");
      apps.addEventListener("click", (event) => {
        event.stopPropagation();
        const box = apps.getBoundingClientRect();
        openMenu(view.id, box.right, box.bottom + 4, true);
      });
      bar.appendChild(apps);
    }
    return bar;
  }

  function renderMessage(view) {
    const li = el("li", "message");
    li.dataset.id = view.id;
    li.dataset.author = view.author && view.author.bot ? "bot" : "user";
    li.id = `message-${view.id}`;
    if (view.reply_to) li.dataset.replyTo = view.reply_to.id;
    if (view.interaction) li.dataset.interaction = view.interaction.id;
    if (view.loading) li.dataset.loading = "true";
    if (view.ephemeral) li.classList.add("ephemeral");

    const reference = renderReference(view);
    if (reference) {
      li.classList.add("has-reference");
      li.appendChild(reference);
    }
    li.appendChild(avatar(view.author, false));

    const body = el("div", "message-body");
    const header = el("div", "message-header");
    header.appendChild(el("span", `author ${view.author && view.author.bot ? "author-bot" : ""}`, view.author ? view.author.name : "unknown"));
    if (view.author && view.author.bot) header.appendChild(el("span", "bot-tag", "APP"));
    const time = el("time", "timestamp", formatTime(view.timestamp));
    time.dateTime = view.timestamp || "";
    header.appendChild(time);
    body.appendChild(header);

    const hoverTime = el("time", "hover-time", formatTime(view.timestamp).replace("Today at ", ""));
    li.appendChild(hoverTime);

    if (view.loading) {
      const thinking = el("div", "thinking");
      thinking.appendChild(el("span", null, `${view.author ? view.author.name : "The bot"} is thinking`));
      thinking.appendChild(dots());
      body.appendChild(thinking);
    } else if (view.content) {
      const content = el("div", "content");
      content.appendChild(window.renderMarkdown(view.content));
      if (view.edited) {
        const last = content.lastElementChild;
        const host = last && last.matches(".line, .subtext, .heading") ? last : content;
        host.appendChild(el("span", "edited", " (edited)"));
      }
      body.appendChild(content);
    }
    if (view.layout) body.appendChild(PlaygroundLayout.render(view, { renderComponents, openLightbox }));
    else if (view.attachments.length) body.appendChild(renderAttachments(view)); // a layout shows its own
    if (view.components && view.components.length) body.appendChild(renderComponents(view));
    if (view.ephemeral) {
      const note = el("div", "ephemeral-note");
      note.appendChild(el("span", "eye", "◉"));
      const shownTo = view.interaction && view.interaction.user;
      const who = !shownTo || !state.me || shownTo.id === state.me.id ? "you" : shownTo.name;
      note.appendChild(document.createTextNode(` Only ${who} can see this • `));
      const dismiss = el("button", "link-button", "Dismiss message");
      dismiss.type = "button";
      dismiss.addEventListener("click", () => removeMessage(view.id));
      note.appendChild(dismiss);
      body.appendChild(note);
    }
    li.appendChild(body);
    li.appendChild(renderActions(view));
    li.addEventListener("contextmenu", (event) => {
      event.preventDefault();
      openMenu(view.id, event.clientX, event.clientY, false);
    });
    return li;
  }

  function dots() {
    const wrap = el("span", "dots");
    wrap.setAttribute("aria-hidden", "true");
    for (let i = 0; i < 3; i++) wrap.appendChild(el("span", "dot"));
    return wrap;
  }

  // Consecutive messages by the same author within 7 minutes share one header, as on Discord.
  function groupWith(li, prev) {
    const view = state.messages.get(li.dataset.id);
    const before = prev ? state.messages.get(prev.dataset.id) : null;
    const grouped =
      before &&
      view &&
      !view.reply_to &&
      !view.interaction &&
      before.author &&
      view.author &&
      before.author.id === view.author.id &&
      new Date(view.timestamp) - new Date(before.timestamp) < 7 * 60 * 1000;
    li.classList.toggle("grouped", Boolean(grouped));
  }

  function upsertMessage(view) {
    const existing = document.getElementById(`message-${view.id}`);
    state.messages.set(view.id, view);
    const li = renderMessage(view);
    if (existing) {
      existing.replaceWith(li);
    } else {
      // Keep snowflake order (ids grow with time), though events normally arrive in order.
      let after = null;
      for (const node of els.messages.children) {
        if (BigInt(node.dataset.id) > BigInt(view.id)) {
          after = node;
          break;
        }
      }
      els.messages.insertBefore(li, after);
    }
    groupWith(li, li.previousElementSibling);
    if (li.nextElementSibling) groupWith(li.nextElementSibling, li);
    if (view.author && !view.loading) clearTyping(view.author.id);
    const mine = view.author && state.me && view.author.id === state.me.id;
    if (!existing && mine) scrollToBottom(true); // what one sends is shown, as on Discord
    else if (state.stick) keepPinned();
    else if (!existing) noteUnseen();
  }

  function removeMessage(id) {
    const node = document.getElementById(`message-${id}`);
    state.messages.delete(id);
    if (!node) return;
    const next = node.nextElementSibling;
    const prev = node.previousElementSibling;
    node.remove();
    if (next) groupWith(next, prev);
    if (state.replyTo && state.replyTo.id === id) cancelReply();
  }

  function jumpTo(id) {
    const node = document.getElementById(`message-${id}`);
    if (!node) return;
    state.stick = false; // the person asked for an older message
    scrollInput.at = performance.now();
    node.scrollIntoView({ block: "center", behavior: "smooth" });
    node.classList.remove("flash");
    void node.offsetWidth;
    node.classList.add("flash");
  }

  // ----------------------------------------------------------------------------- typing

  function renderTyping() {
    els.typing.replaceChildren();
    const names = [...state.typing.values()].map((t) => t.name);
    if (!names.length) return;
    els.typing.appendChild(dots());
    const text = el("span", "typing-text");
    names.forEach((name, i) => {
      if (i) text.appendChild(document.createTextNode(i === names.length - 1 ? " and " : ", "));
      text.appendChild(el("b", null, name));
    });
    text.appendChild(document.createTextNode(names.length > 1 ? " are typing…" : " is typing…"));
    els.typing.appendChild(text);
  }

  function onTyping(data) {
    if (state.me && data.user_id === state.me.id) return;
    const current = state.typing.get(data.user_id);
    if (current) clearTimeout(current.timer);
    const timer = setTimeout(() => clearTyping(data.user_id), 10000); // Discord's 10 s
    state.typing.set(data.user_id, { name: data.name, timer });
    renderTyping();
  }

  function clearTyping(userId) {
    const current = state.typing.get(userId);
    if (!current) return;
    clearTimeout(current.timer);
    state.typing.delete(userId);
    renderTyping();
  }

  // ----------------------------------------------------------------------------- menu, lightbox

  function openMenu(messageId, x, y, alignRight) {
    const view = state.messages.get(messageId);
    if (!view) return;
    els.menu.replaceChildren();
    const item = (label, action, disabled) => {
      const button = el("button", "menu-item", label);
      button.type = "button";
      button.setAttribute("role", "menuitem");
      button.disabled = Boolean(disabled);
      button.addEventListener("click", () => {
        closeMenu();
        action();
      });
      els.menu.appendChild(button);
    };
    item("Reply", () => startReply(messageId));
    els.menu.appendChild(el("div", "menu-heading", "Apps"));
    const apps = state.commands.filter((c) => c.type === 3);
    if (!apps.length) item("No apps yet (is the bot running?)", () => {}, true);
    for (const app of apps) item(app.name, () => runMessageCommand(app.name, messageId));
    els.menu.hidden = false;
    const box = els.menu.getBoundingClientRect();
    const left = Math.min(alignRight ? x - box.width : x, window.innerWidth - box.width - 8);
    const top = Math.min(y, window.innerHeight - box.height - 8);
    els.menu.style.left = `${Math.max(8, left)}px`;
    els.menu.style.top = `${Math.max(8, top)}px`;
    els.menu.querySelector("button:not([disabled])")?.focus();
  }

  function closeMenu() {
    els.menu.hidden = true;
  }

  function openLightbox(attachment) {
    els.lightboxImg.src = attachment.url;
    els.lightboxImg.alt = attachment.filename;
    els.lightboxName.textContent = attachment.filename;
    els.lightboxOpen.href = attachment.url;
    els.lightbox.hidden = false;
  }

  function closeLightbox() {
    els.lightbox.hidden = true;
    els.lightboxImg.removeAttribute("src");
  }

  // ----------------------------------------------------------------------------- composer

  function startReply(id) {
    const view = state.messages.get(id);
    if (!view) return;
    state.replyTo = view;
    els.replyName.textContent = view.author ? view.author.name : "unknown";
    els.replyBar.hidden = false;
    document.querySelectorAll(".message.replying").forEach((n) => n.classList.remove("replying"));
    document.getElementById(`message-${id}`)?.classList.add("replying");
    els.text.focus();
  }

  function cancelReply() {
    state.replyTo = null;
    els.replyBar.hidden = true;
    document.querySelectorAll(".message.replying").forEach((n) => n.classList.remove("replying"));
  }

  // Attach files to the next message. One that would take the message over the upload limit is
  // left out at once, with its name: the others, and later messages, still go.
  function addFiles(files) {
    const refused = [];
    for (const file of files) {
      if (state.pending.length >= state.limits.max_files) {
        showError(`At most ${state.limits.max_files} files per message.`);
        break;
      }
      if (totalPendingBytes() + file.size > state.limits.max_upload_bytes) {
        refused.push(`${file.name || "pasted image"} (${formatSize(file.size)})`);
        continue;
      }
      const url = file.type.startsWith("image/") ? URL.createObjectURL(file) : null;
      state.pending.push({ file, url });
    }
    if (refused.length) {
      const limit = formatSize(state.limits.max_upload_bytes);
      showError(`${refused.join(", ")} not attached: files can be at most ${limit} per message.`);
    }
    renderPending();
    els.text.focus();
  }

  // What a file that is not an image looks like: its type, name and size (also for a file
  // named .png that does not decode).
  function fileChip(name, size, url) {
    const card = el("div", "file-card");
    const ext = /\.([A-Za-z0-9]{1,4})$/.exec(name);
    card.appendChild(el("div", "file-icon", ext ? ext[1].toUpperCase() : "FILE"));
    const info = el("div", "file-info");
    const title = el(url ? "a" : "div", "file-name", name);
    if (url) {
      title.href = url;
      title.target = "_blank";
      title.rel = "noopener noreferrer";
      title.download = name;
    }
    info.appendChild(title);
    info.appendChild(el("div", "file-size", formatSize(size)));
    card.appendChild(info);
    return card;
  }

  function clearPending() {
    for (const p of state.pending) if (p.url) URL.revokeObjectURL(p.url);
    state.pending = [];
    renderPending();
  }

  function renderPending() {
    els.pending.replaceChildren();
    els.pending.hidden = state.pending.length === 0;
    state.pending.forEach((p, index) => {
      const chip = el("div", "pending-file");
      const name = p.file.name || "pasted image";
      if (p.url) {
        const img = document.createElement("img");
        img.src = p.url;
        img.alt = "";
        img.addEventListener("error", () => img.replaceWith(el("div", "file-icon", "FILE")));
        chip.appendChild(img);
      } else {
        chip.appendChild(el("div", "file-icon", "FILE"));
      }
      chip.appendChild(el("div", "pending-name", name));
      chip.appendChild(el("div", "pending-size", formatSize(p.file.size)));
      const remove = el("button", "pending-remove", "×");
      remove.type = "button";
      remove.setAttribute("aria-label", `Remove ${p.file.name || "file"}`);
      remove.addEventListener("click", () => {
        if (p.url) URL.revokeObjectURL(p.url);
        state.pending.splice(index, 1);
        renderPending();
      });
      chip.appendChild(remove);
      els.pending.appendChild(chip);
    });
  }

  function autosize() {
    els.text.style.height = "auto";
    els.text.style.height = `${Math.min(els.text.scrollHeight, 200)}px`;
  }

  async function postForm(url, form) {
    let response;
    try {
      response = await fetch(url, {
        method: "POST",
        body: form,
        headers: { "X-Playground-Token": pageToken },
      });
    } catch (error) {
      throw new Error("The playground is not reachable. Is it still running?");
    }
    if (response.ok) return response.json();
    let message = `${response.status} ${response.statusText}`;
    try {
      const body = await response.json();
      if (body && body.error) message = body.error;
    } catch (_) {
      if (response.status === 413) message = "Too large for the playground.";
    }
    const error = new Error(message);
    error.status = response.status;
    throw error;
  }

  function totalPendingBytes() {
    return state.pending.reduce((sum, p) => sum + p.file.size, 0);
  }

  function parseSlash(text) {
    const match = /^\/(\S+)\s*([\s\S]*)$/.exec(text);
    if (!match) return null;
    const command = state.commands.find((c) => c.type === 1 && c.name === match[1].toLowerCase());
    if (!command) {
      const known = state.commands.filter((c) => c.type === 1).map((c) => `/${c.name}`);
      throw new Error(
        known.length
          ? `Unknown command /${match[1]}. Try ${known.join(" or ")}.`
          : "The bot has not registered its slash commands yet. Is it running?",
      );
    }
    const plain = command.options.filter((o) => o.type !== 11);
    const needsFile = command.options.filter((o) => o.type === 11 && o.required);
    const options = {};
    const words = match[2].split(/\s+/).filter(Boolean);
    let position = 0;
    for (const word of words) {
      const named = /^([a-z_-]+):(.*)$/.exec(word);
      const option = named ? plain.find((o) => o.name === named[1]) : plain[position++];
      if (!option) throw new Error(`/${command.name} does not take "${word}".`);
      let value = named ? named[2] : word;
      if (option.type === 4) {
        if (!/^-?\d+$/.test(value)) throw new Error(`${option.name} must be a whole number.`);
        value = Number(value);
        const low = option.min_value;
        const high = option.max_value;
        if ((low != null && value < low) || (high != null && value > high)) {
          throw new Error(`${option.name} must be from ${low} to ${high}.`);
        }
      }
      options[option.name] = value;
    }
    if (needsFile.length > state.pending.length) {
      throw new Error(`Attach an image to use /${command.name}: drop it here, paste it, or press +.`);
    }
    return { command, options };
  }

  // Sends go out one after another, in the order they were made; the composer is cleared at
  // once (as on Discord) and restored if the send fails while it is still empty.
  let queue = Promise.resolve();

  function submit() {
    const text = els.text.value;
    const trimmed = text.trim();
    if (!trimmed && !state.pending.length) return queue;
    const form = new FormData();
    for (const p of state.pending) form.append("files", p.file, p.file.name || "image.png");
    let url = "/playground/api/messages";
    try {
      const slash = trimmed.startsWith("/") ? parseSlash(trimmed) : null;
      if (slash) {
        url = "/playground/api/interactions";
        form.append("kind", "slash");
        form.append("name", slash.command.name);
        form.append("options", JSON.stringify(slash.options));
      } else {
        form.append("content", text);
        if (state.replyTo) form.append("reply_to", state.replyTo.id);
      }
      form.append("as", state.as);
    } catch (error) {
      showError(error.message);
      return queue;
    }
    const saved = { text, pending: state.pending, replyTo: state.replyTo };
    state.pending = [];
    renderPending();
    els.text.value = "";
    autosize();
    cancelReply();
    hidePopup();
    showError("");
    queue = queue.then(async () => {
      try {
        await postForm(url, form);
        for (const p of saved.pending) if (p.url) URL.revokeObjectURL(p.url);
      } catch (error) {
        if (error.status === 413) {
          // Too large for the server: say which files, and do not put them back to block the
          // next message.
          const names = saved.pending.map((p) => p.file.name || "pasted image").join(", ");
          showError(`${names}: too large to upload (at most ${formatSize(state.limits.max_upload_bytes)} per message).`);
          saved.pending = [];
        } else {
          showError(error.message);
        }
        if (!els.text.value && !state.pending.length) {
          els.text.value = saved.text;
          state.pending = saved.pending;
          renderPending();
          autosize();
          if (saved.replyTo && state.messages.has(saved.replyTo.id)) startReply(saved.replyTo.id);
        }
      }
    });
    return queue;
  }

  async function runMessageCommand(name, targetId) {
    const form = new FormData();
    form.append("kind", "message");
    form.append("name", name);
    form.append("target_id", targetId);
    form.append("as", state.as);
    try {
      await postForm("/playground/api/interactions", form);
    } catch (error) {
      showError(error.message);
    }
  }

  async function sendSample(sample) {
    try {
      const response = await fetch(sample.url);
      if (!response.ok) throw new Error(`could not load ${sample.name}`);
      const blob = await response.blob();
      addFiles([new File([blob], sample.name, { type: blob.type || "image/jpeg" })]);
      await submit();
    } catch (error) {
      showError(error.message);
    }
  }

  // Slash-command suggestions while the box holds "/word" and nothing else.
  function updatePopup() {
    const match = /^\/(\S*)$/.exec(els.text.value);
    const commands = match
      ? state.commands.filter((c) => c.type === 1 && c.name.startsWith(match[1].toLowerCase()))
      : [];
    if (!commands.length) {
      hidePopup();
      return;
    }
    els.popup.replaceChildren(el("div", "popup-heading", "Commands"));
    for (const command of commands) {
      const item = el("button", "popup-item");
      item.type = "button";
      item.setAttribute("role", "option");
      item.appendChild(el("span", "popup-name", `/${command.name}`));
      const args = command.options.map((o) => (o.required ? o.name : `[${o.name}]`)).join(" ");
      if (args) item.appendChild(el("span", "popup-args", args));
      item.appendChild(el("span", "popup-description", command.description));
      item.addEventListener("click", () => {
        els.text.value = `/${command.name} `;
        hidePopup();
        els.text.focus();
      });
      els.popup.appendChild(item);
    }
    els.popup.hidden = false;
  }

  function hidePopup() {
    els.popup.hidden = true;
  }

  // ----------------------------------------------------------------------------- state, socket

  function applyStatus(online, commands) {
    if (commands) state.commands = commands;
    if (state.bot) state.bot.online = online;
    els.memberBot.dataset.online = String(Boolean(online));
    els.onlineCount.textContent = String(state.people.length + (online ? 1 : 0));
  }

  // ----------------------------------------------------------------------------- people

  function renderPeople() {
    els.people.replaceChildren();
    for (const person of state.people) {
      const row = el("div", "member");
      row.dataset.online = "true";
      row.dataset.username = person.username;
      const face = avatar(person, false);
      face.classList.add("small");
      face.appendChild(el("span", "presence"));
      row.appendChild(face);
      row.appendChild(el("span", "member-name", person.name));
      row.appendChild(el("span", `role-tag role-${person.title}`, person.title));
      els.people.appendChild(row);
    }
    els.postingAs.replaceChildren();
    for (const person of state.people) {
      const option = el("option", null, person.name);
      option.value = person.username;
      option.title = `${person.name}, ${person.title}`;
      option.selected = person.username === state.as;
      els.postingAs.appendChild(option);
    }
  }

  // Acting as someone else: what they post, use and click is theirs, and the notes on
  // ephemeral messages say whom each is for.
  function postAs(username) {
    const person = state.people.find((p) => p.username === username) || state.people[0];
    if (!person) return;
    state.as = person.username;
    state.me = person;
    $("me-name").textContent = person.name;
    els.meAvatar.className = `avatar ${avatarClass(person)} small`;
    els.meAvatar.textContent = initials(person);
    els.postingAs.value = person.username;
    try {
      localStorage.setItem(POSTING_AS_KEY, person.username);
    } catch (_) {
      // storage refused: the choice lasts until the page is reloaded
    }
    for (const view of state.messages.values()) rerender(view);
  }

  function rerender(view) {
    const node = document.getElementById(`message-${view.id}`);
    if (!node) return;
    const li = renderMessage(view);
    if (node.classList.contains("replying")) li.classList.add("replying");
    node.replaceWith(li);
    groupWith(li, li.previousElementSibling);
  }

  function applyState(data) {
    state.people = data.people && data.people.length ? data.people : [data.me];
    state.me = state.people.find((p) => p.username === state.as) || state.people[0];
    state.as = state.me.username;
    state.bot = data.bot;
    state.limits = data.limits || state.limits;
    window.markdown.setLookup({
      user: (id) => [...state.people, state.bot].find((u) => u && u.id === id)?.name,
      channel: (id) => (id === data.channel.id ? data.channel.name : null),
    });
    $("guild-name").textContent = data.guild.name;
    $("guild-icon").title = data.guild.name;
    for (const id of ["channel-name", "sidebar-channel", "welcome-channel"]) {
      $(id).textContent = data.channel.name;
    }
    $("channel-topic").textContent = data.channel.topic;
    els.text.placeholder = `Message #${data.channel.name}`;
    renderPeople();
    $("me-name").textContent = state.me.name;
    els.meAvatar.className = `avatar ${avatarClass(state.me)} small`;
    els.meAvatar.textContent = initials(state.me);
    $("bot-name").textContent = data.bot.name;
    document.title = `#${data.channel.name} · ${data.guild.name} · JediSith playground`;
    applyStatus(data.bot.online, data.commands);
    renderSamples(data.samples || []);
    pin();
    state.messages.clear();
    els.messages.replaceChildren();
    for (const view of data.messages) upsertMessage(view);
    scrollToBottom(true);
  }

  function renderSamples(samples) {
    els.samples.querySelectorAll(".sample").forEach((n) => n.remove());
    for (const sample of samples) {
      const button = el("button", "sample");
      button.type = "button";
      button.title = `Send ${sample.name} (with what you typed)`;
      button.dataset.name = sample.name;
      const img = document.createElement("img");
      img.src = sample.url;
      img.alt = sample.name;
      button.appendChild(img);
      button.appendChild(el("span", `sample-label ${sample.label}`, sample.label));
      button.addEventListener("click", () => sendSample(sample));
      els.samples.appendChild(button);
    }
  }

  function setConnection(kind, text) {
    els.connection.dataset.state = kind;
    els.connection.textContent = text;
  }

  let retryDelay = 500;
  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const token = encodeURIComponent(pageToken);
    const socket = new WebSocket(`${scheme}://${location.host}/playground/ws?token=${token}`);
    socket.addEventListener("message", (event) => {
      let payload;
      try {
        payload = JSON.parse(event.data);
      } catch (_) {
        return;
      }
      const data = payload.data;
      switch (payload.type) {
        case "hello":
          retryDelay = 500;
          applyState(data);
          setConnection(data.bot.online ? "online" : "offline", data.bot.online ? "bot online" : "bot offline");
          document.body.dataset.ready = "true";
          break;
        case "status":
          applyStatus(data.online, data.commands);
          setConnection(data.online ? "online" : "offline", data.online ? "bot online" : "bot offline");
          break;
        case "message_create":
        case "message_update":
          upsertMessage(data);
          break;
        case "message_delete":
          removeMessage(data.id);
          break;
        case "typing_start":
          onTyping(data);
          break;
        default:
          break;
      }
    });
    socket.addEventListener("close", () => {
      document.body.dataset.ready = "false";
      setConnection("lost", "reconnecting…");
      setTimeout(connect, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 5000);
    });
  }

  // ----------------------------------------------------------------------------- wiring

  els.composer.addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });
  els.text.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    } else if (event.key === "Escape") {
      if (!els.popup.hidden) hidePopup();
      else cancelReply();
    } else if (event.key === "Tab" && !els.popup.hidden) {
      event.preventDefault();
      els.popup.querySelector(".popup-item")?.click();
    }
  });
  els.text.addEventListener("input", () => {
    autosize();
    updatePopup();
  });
  els.attach.addEventListener("click", () => els.fileInput.click());
  els.fileInput.addEventListener("change", () => {
    addFiles([...els.fileInput.files]);
    els.fileInput.value = "";
  });
  els.replyCancel.addEventListener("click", cancelReply);
  els.postingAs.addEventListener("change", () => postAs(els.postingAs.value));

  document.addEventListener("paste", (event) => {
    const files = [...(event.clipboardData?.files || [])];
    if (files.length) {
      event.preventDefault();
      addFiles(files);
    }
  });

  let dragDepth = 0;
  const hasFiles = (event) => [...(event.dataTransfer?.types || [])].includes("Files");
  window.addEventListener("dragenter", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    dragDepth++;
    els.dropOverlay.hidden = false;
  });
  window.addEventListener("dragover", (event) => {
    if (hasFiles(event)) event.preventDefault();
  });
  window.addEventListener("dragleave", () => {
    dragDepth = Math.max(0, dragDepth - 1);
    if (!dragDepth) els.dropOverlay.hidden = true;
  });
  window.addEventListener("drop", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    dragDepth = 0;
    els.dropOverlay.hidden = true;
    addFiles([...event.dataTransfer.files]);
  });

  els.scroller.addEventListener("scroll", onScroll);
  const scrolling = () => {
    scrollInput.at = performance.now();
  };
  els.scroller.addEventListener("wheel", scrolling, { passive: true });
  els.scroller.addEventListener("touchmove", scrolling, { passive: true });
  document.addEventListener("keydown", (event) => {
    if (event.target.closest("textarea, input, select")) return; // typing, not scrolling
    if (/^(PageUp|PageDown|ArrowUp|ArrowDown|Home|End|Tab| )$/.test(event.key)) scrolling();
  });
  els.scroller.addEventListener("pointerdown", (event) => {
    // On the scroll bar: right of the content box (a click on a message is not a scroll).
    if (event.target === els.scroller && event.offsetX >= els.scroller.clientWidth) {
      scrollInput.dragging = true;
    }
  });
  window.addEventListener("pointerup", () => {
    if (scrollInput.dragging) scrolling();
    scrollInput.dragging = false;
  });
  els.newMessages.addEventListener("click", () => scrollToBottom(true));
  // Heights change without a scroll event (images decoding, the composer growing): re-pin.
  const resizes = new ResizeObserver(keepPinned);
  resizes.observe(els.messages);
  resizes.observe(els.scroller);
  document.addEventListener("click", (event) => {
    if (!els.menu.hidden && !els.menu.contains(event.target)) closeMenu();
  });
  els.lightbox.addEventListener("click", (event) => {
    if (event.target !== els.lightboxOpen) closeLightbox();
  });
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    closeMenu();
    closeLightbox();
  });
  window.addEventListener("resize", keepPinned);

  connect();
})();

// Everything that touches the DOM. Every string that came from a person or
// the server is set with textContent or an attribute, never parsed as HTML.
// The UI holds no chat state: app.js owns it and calls these functions.

import { Status } from "./store.js";
import { authorTag, connectionLabel, formatFull, formatStamp, rateLimitLabel, retryLabel } from "./format.js";

const STATUS_WORDS = {
  [Status.PENDING]: "Sending…",
  [Status.SENT]: "Sent",
  [Status.CONFIRMED]: "",
  [Status.FAILED]: "Not sent",
};

/** Distance from the bottom (px) within which new lines keep the view pinned to the end. */
const PIN_DISTANCE = 80;

function el(doc, tag, className, text) {
  const node = doc.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/**
 * @param {Document} doc
 * @param {{
 *   onSend(text: string): boolean,
 *   onRetry(id: string): void,
 *   onEdit(id: string): void,
 *   onOpenRoom(name: string): string|null,
 *   onSaveName(name: string): string|null,
 *   onReconnectNow(): void,
 *   onComposerInput(text: string): void,
 * }} handlers  onOpenRoom/onSaveName return an error message or null.
 */
export function createUi(doc, handlers) {
  const $ = (id) => doc.getElementById(id);
  const nodes = {
    connection: $("connection"),
    connectionText: $("connection-text"),
    connectionRetry: $("connection-retry"),
    reconnectNow: $("reconnect-now"),
    meName: $("me-name"),
    changeName: $("change-name"),
    roomList: $("room-list"),
    roomForm: $("room-form"),
    roomInput: $("room-input"),
    roomError: $("room-error"),
    roomTitle: $("room-title"),
    roomNotice: $("room-notice"),
    messages: $("messages"),
    empty: $("messages-empty"),
    jump: $("jump-latest"),
    composer: $("composer"),
    composerLabel: $("composer-label"),
    text: $("composer-text"),
    count: $("composer-count"),
    composerError: $("composer-error"),
    sendStatus: $("send-status"),
    nameDialog: $("name-dialog"),
    nameForm: $("name-form"),
    nameInput: $("name-input"),
    nameError: $("name-error"),
    nameCancel: $("name-cancel"),
    announcer: $("announcer"),
  };
  /** li elements by message id, reused across renders. */
  const rendered = new Map();
  let nameRequired = false;

  // --- composer ---------------------------------------------------------
  function submitComposer() {
    const ok = handlers.onSend(nodes.text.value);
    if (ok) {
      nodes.text.value = "";
      updateCount();
    }
    nodes.text.focus();
  }
  nodes.composer.addEventListener("submit", (event) => {
    event.preventDefault();
    submitComposer();
  });
  nodes.text.addEventListener("keydown", (event) => {
    // Enter sends; Shift+Enter is a newline; never interrupt an IME composition.
    if (event.key !== "Enter" || event.shiftKey || event.isComposing || event.keyCode === 229) return;
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    event.preventDefault();
    submitComposer();
  });
  function updateCount() {
    const length = [...nodes.text.value.trim()].length;
    nodes.count.textContent = length > 1800 ? `${length} / 2000` : "";
    nodes.count.classList.toggle("over", length > 2000);
  }
  nodes.text.addEventListener("input", () => {
    updateCount();
    nodes.composerError.textContent = "";
    handlers.onComposerInput?.(nodes.text.value);
  });

  // The skip link must not follow its href: the location hash names the room, so "#composer-text" would
  // open a room called composer-text. Focus the message box directly instead.
  doc.querySelector(".skip-link")?.addEventListener("click", (event) => {
    event.preventDefault();
    nodes.text.focus();
  });

  // --- rooms ------------------------------------------------------------
  nodes.roomForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const error = handlers.onOpenRoom(nodes.roomInput.value);
    nodes.roomError.textContent = error ?? "";
    nodes.roomInput.setAttribute("aria-invalid", error ? "true" : "false");
    if (!error) {
      nodes.roomInput.value = "";
      nodes.text.focus();
    } else {
      nodes.roomInput.focus();
    }
  });
  nodes.roomInput.addEventListener("input", () => {
    nodes.roomError.textContent = "";
    nodes.roomInput.removeAttribute("aria-invalid");
  });

  // --- name dialog ------------------------------------------------------
  nodes.changeName.addEventListener("click", () => openNameDialog(nodes.meName.textContent, false));
  nodes.nameForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const error = handlers.onSaveName(nodes.nameInput.value);
    nodes.nameError.textContent = error ?? "";
    nodes.nameInput.setAttribute("aria-invalid", error ? "true" : "false");
    if (error) {
      nodes.nameInput.focus();
      return;
    }
    nameRequired = false;
    nodes.nameDialog.close();
    nodes.text.focus();
  });
  nodes.nameCancel.addEventListener("click", () => {
    if (!nameRequired) nodes.nameDialog.close();
  });
  nodes.nameDialog.addEventListener("cancel", (event) => {
    if (nameRequired) event.preventDefault(); // Escape cannot skip choosing a first name
  });

  function openNameDialog(current, required) {
    nameRequired = required;
    nodes.nameCancel.hidden = required;
    nodes.nameInput.value = current ?? "";
    nodes.nameError.textContent = "";
    nodes.nameInput.removeAttribute("aria-invalid");
    if (!nodes.nameDialog.open) nodes.nameDialog.showModal();
    nodes.nameInput.focus();
    nodes.nameInput.select();
  }

  // --- connection -------------------------------------------------------
  nodes.reconnectNow.addEventListener("click", () => handlers.onReconnectNow());

  // --- message list -----------------------------------------------------
  function isNearBottom() {
    const list = nodes.messages;
    return list.scrollHeight - list.scrollTop - list.clientHeight < PIN_DISTANCE;
  }
  function scrollToEnd() {
    nodes.messages.scrollTop = nodes.messages.scrollHeight;
    nodes.jump.hidden = true;
  }
  nodes.jump.addEventListener("click", () => {
    scrollToEnd();
    nodes.messages.focus();
  });
  nodes.messages.addEventListener("scroll", () => {
    if (isNearBottom()) nodes.jump.hidden = true;
  });
  nodes.messages.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const id = button.closest("li[data-id]")?.dataset.id;
    if (!id) return;
    if (button.dataset.action === "retry") handlers.onRetry(id);
    if (button.dataset.action === "edit") handlers.onEdit(id);
  });

  function buildItem(entry) {
    const li = el(doc, "li", "message");
    li.dataset.id = entry.id;
    const meta = el(doc, "p", "meta");
    // `.author` stays the bare display name (tests/e2e read it); the tag from the
    // author's identity id tells two people with the same name apart.
    const author = el(doc, "span", "author author-name");
    const tag = el(doc, "span", "author-tag");
    const you = el(doc, "span", "you", " (you)");
    const time = el(doc, "time", "stamp");
    const state = el(doc, "span", "state");
    meta.append(author, tag, you, " ", time, " ", state);
    const text = el(doc, "p", "text");
    const problem = el(doc, "p", "problem");
    const reason = el(doc, "span", "reason");
    const retry = el(doc, "button", "link-button", "Retry");
    retry.type = "button";
    retry.dataset.action = "retry";
    const edit = el(doc, "button", "link-button", "Edit");
    edit.type = "button";
    edit.dataset.action = "edit";
    problem.append(reason, " ", retry, " ", edit);
    li.append(meta, text, problem);
    li._parts = { author, tag, you, time, state, text, problem, reason, retry, edit };
    li._key = "";
    return li;
  }

  function updateItem(li, entry, isOwn, now) {
    // Skip DOM writes when nothing visible changed (renders happen per message).
    const waiting = entry.status === Status.PENDING && entry.waitUntil ? rateLimitLabel(entry.waitUntil - now.getTime()) : "";
    const key = [entry.user, entry.authorId, entry.text, entry.createdAt, entry.status, entry.error, entry.retryable, isOwn, waiting].join("\u0000");
    if (li._key === key) return;
    li._key = key;
    const p = li._parts;
    li.classList.toggle("own", isOwn);
    li.dataset.status = entry.status;
    p.author.textContent = entry.user;
    const tag = authorTag(entry.authorId);
    p.tag.textContent = tag;
    p.tag.hidden = tag === "";
    p.tag.title = tag ? `Identity ${entry.authorId}` : "";
    p.you.hidden = !isOwn;
    p.text.textContent = entry.text;
    if (entry.createdAt) {
      p.time.hidden = false;
      p.time.dateTime = entry.createdAt;
      p.time.textContent = formatStamp(entry.createdAt, { now });
      p.time.title = formatFull(entry.createdAt);
    } else {
      p.time.hidden = true;
      p.time.textContent = "";
    }
    p.state.textContent = waiting || (STATUS_WORDS[entry.status] ?? "");
    p.state.hidden = p.state.textContent === "";
    const failed = entry.status === Status.FAILED;
    p.problem.hidden = !failed;
    p.reason.textContent = failed ? entry.error ?? "Could not send." : "";
    p.retry.hidden = !(failed && entry.retryable);
    p.retry.setAttribute("aria-label", `Retry sending: ${entry.text.slice(0, 40)}`);
    p.edit.setAttribute("aria-label", `Edit unsent message: ${entry.text.slice(0, 40)}`);
  }

  /**
   * Reconciles the list with `entries` (display order) by id: existing
   * elements are updated and moved, never rebuilt, so focus on a Retry
   * button and the scroll position survive a render.
   * @param {object[]} entries
   * @param {(entry: object) => boolean} isOwn
   * @param {{forceScroll?: boolean, loaded?: boolean}} [options] `loaded`: the room's
   *   history has arrived, so an empty list means an empty room (not "still loading").
   */
  function renderMessages(entries, isOwn, { forceScroll = false, loaded = true } = {}) {
    const list = nodes.messages;
    const pinned = isNearBottom();
    const now = new Date();
    const keep = new Set(entries.map((e) => e.id));
    for (const [id, li] of rendered) {
      if (!keep.has(id)) {
        li.remove();
        rendered.delete(id);
      }
    }
    let cursor = list.firstElementChild;
    let grew = false;
    for (const entry of entries) {
      let li = rendered.get(entry.id);
      if (!li) {
        li = buildItem(entry);
        rendered.set(entry.id, li);
        grew = true;
      }
      updateItem(li, entry, isOwn(entry), now);
      if (li !== cursor) list.insertBefore(li, cursor);
      else cursor = cursor.nextElementSibling;
    }
    nodes.empty.hidden = entries.length > 0;
    nodes.empty.textContent = loaded ? "No messages yet. Say hello!" : "Loading messages…";
    if (forceScroll || pinned) scrollToEnd();
    else if (grew) nodes.jump.hidden = false;
  }

  function clearMessages() {
    nodes.messages.replaceChildren();
    rendered.clear();
    nodes.jump.hidden = true;
  }

  return {
    renderMessages,
    clearMessages,

    showRoom(room) {
      nodes.roomTitle.textContent = `#${room}`;
      nodes.composerLabel.textContent = `Message #${room}`;
      nodes.text.placeholder = `Message #${room}`;
      nodes.roomNotice.textContent = "";
      clearMessages();
      doc.title = `#${room} · Cosmic Chat`;
    },

    setRooms(rooms, current) {
      const items = rooms.map((room) => {
        const li = el(doc, "li");
        const a = el(doc, "a", "room-link", `#${room}`);
        a.href = `#${room}`;
        if (room === current) a.setAttribute("aria-current", "page");
        li.append(a);
        return li;
      });
      nodes.roomList.replaceChildren(...items);
    },

    showRoomError(message) {
      nodes.roomError.textContent = message ?? "";
    },

    setNotice(message) {
      nodes.roomNotice.textContent = message ?? "";
    },

    setName(name) {
      nodes.meName.textContent = name || "…";
    },

    openNameDialog,

    setConnection(state, detail = {}) {
      nodes.connection.dataset.state = state;
      const label = connectionLabel(state, detail);
      if (nodes.connectionText.textContent !== label) nodes.connectionText.textContent = label;
      nodes.connectionRetry.textContent = detail.note ?? (state === "offline" ? retryLabel(detail.retryInMs) : "");
      // Without a retry schedule (e.g. the SignalR library is missing) there is nothing to hurry.
      nodes.reconnectNow.hidden = state !== "offline" || detail.note !== undefined;
    },

    /** The rate-limit status under the composer ("Sending too fast: retrying in 7 s"); "" hides it. */
    setSendStatus(message) {
      const text = message ?? "";
      if (nodes.sendStatus.textContent !== text) nodes.sendStatus.textContent = text;
    },

    showComposerError(message) {
      nodes.composerError.textContent = message ?? "";
      nodes.text.setAttribute("aria-invalid", message ? "true" : "false");
    },

    setComposerText(text) {
      nodes.text.value = text;
      updateCount();
      nodes.text.focus();
      nodes.text.setSelectionRange(text.length, text.length);
    },

    focusComposer() {
      nodes.text.focus();
    },

    /** Reads a line out through the polite live region; keeps only the last few. */
    announce(text) {
      const line = el(doc, "p", null, text);
      nodes.announcer.append(line);
      while (nodes.announcer.childElementCount > 5) nodes.announcer.firstElementChild.remove();
    },
  };
}

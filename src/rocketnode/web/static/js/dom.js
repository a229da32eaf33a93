// Building DOM nodes without HTML strings: text from other servers only ever becomes text.

export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") element.className = value;
    else if (key === "dataset") Object.assign(element.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") {
      element.addEventListener(key.slice(2), value);
    } else if (value === true) element.setAttribute(key, "");
    else element.setAttribute(key, String(value));
  }
  appendChildren(element, children);
  return element;
}

export function appendChildren(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
}

export function setChildren(element, ...children) {
  element.replaceChildren();
  appendChildren(element, children);
}

export function byId(id) {
  const element = document.getElementById(id);
  if (!element) throw new Error(`missing #${id}`);
  return element;
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
const dayFormat = new Intl.DateTimeFormat(undefined, {
  weekday: "long", day: "numeric", month: "long",
});
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

export function formatTime(ts) {
  return timeFormat.format(new Date(ts));
}

export function formatFull(ts) {
  return fullFormat.format(new Date(ts));
}

export function dayLabel(ts, now = Date.now()) {
  const day = new Date(ts).toDateString();
  if (day === new Date(now).toDateString()) return "Today";
  if (day === new Date(now - 86_400_000).toDateString()) return "Yesterday";
  return dayFormat.format(new Date(ts));
}

export function formatAgo(ts, now = Date.now()) {
  if (!ts) return "never";
  const seconds = Math.max(0, Math.round((now - ts) / 1000));
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86_400)} d ago`;
}

// One of eight avatar colours, always the same for the same ID.
export function colourClass(id) {
  let hash = 0;
  for (const char of id) hash = (hash * 31 + char.codePointAt(0)) >>> 0;
  return `c${hash % 8}`;
}

export function initial(name) {
  const letters = [...name.replace(/^[@#!]/, "")];
  return (letters[0] ?? "?").toUpperCase();
}

export function avatar(id, name, extraClass = "") {
  return h("span", { class: `avatar ${colourClass(id)} ${extraClass}`, "aria-hidden": "true" },
    initial(name));
}

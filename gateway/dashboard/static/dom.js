// Building the page: elements from data, never from HTML strings (text goes in as text nodes).

export function h(tag, props, ...children) {
  const element = document.createElement(tag);
  setProps(element, props);
  add(element, children);
  return element;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

export function s(tag, attributes, ...children) {
  const element = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attributes || {})) {
    if (value !== undefined && value !== null) element.setAttribute(key, String(value));
  }
  add(element, children);
  return element;
}

function setProps(element, props) {
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') element.className = value;
    else if (key.startsWith('on') && typeof value === 'function') element.addEventListener(key.slice(2), value);
    else if (key === 'dataset') Object.assign(element.dataset, value);
    else if (key === 'value' || key === 'checked' || key === 'selected') element[key] = value;
    else element.setAttribute(key, value === true ? '' : String(value));
  }
}

export function add(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

export function replace(element, ...children) {
  element.replaceChildren();
  return add(element, children);
}

export function table(headers, rows, { caption, empty = 'Nothing here.' } = {}) {
  const head = h('tr', null, headers.map((name) => {
    const [label, cls] = Array.isArray(name) ? name : [name, undefined];
    return h('th', { scope: 'col', class: cls }, label);
  }));
  const body = h('tbody', null, rows);
  if (!rows.length) body.append(h('tr', null, h('td', { colspan: headers.length, class: 'muted' }, empty)));
  return h('div', { class: 'table-wrap' }, h('table', null, caption ? h('caption', null, caption) : null,
    h('thead', null, head), body));
}

export function errorBox(error) {
  return h('p', { class: 'error', role: 'alert' }, error && error.message ? error.message : String(error));
}

export function button(label, onclick, props = {}) {
  return h('button', { type: 'button', ...props, onclick }, label);
}

// A button whose action needs a second press to confirm ("Delete" then "Delete for good?").
export function confirmButton(label, confirmLabel, action, props = {}) {
  let armed = false;
  const element = button(label, async () => {
    if (!armed) {
      armed = true;
      element.textContent = confirmLabel;
      return;
    }
    element.disabled = true;
    try {
      await action();
    } finally {
      element.disabled = false;
      armed = false;
      element.textContent = label;
    }
  }, { class: 'danger', ...props });
  element.addEventListener('blur', () => {
    armed = false;
    element.textContent = label;
  });
  return element;
}

// Runs fn at most once per `wait` ms, last call wins: many events in a burst make one reload.
export function debounce(fn, wait) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), wait);
  };
}

// Runs fn at once, then at most once per `wait` ms while calls keep coming (the last one always runs).
export function throttle(fn, wait) {
  let last = 0;
  let timer = null;
  return () => {
    const due = last + wait - Date.now();
    if (due <= 0) {
      last = Date.now();
      fn();
    } else if (!timer) {
      timer = setTimeout(() => {
        timer = null;
        last = Date.now();
        fn();
      }, due);
    }
  };
}

/**
 * What both pages (the run dashboard and the multi-run page) share: the head
 * with the common styles, and the key picker's script.
 *
 * @module
 */

/** The document's start through `<body>`: title, uPlot's stylesheet, the shared styles and `style`. Internal. */
export function pageHead(title: string, style: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<link rel="stylesheet" href="/uplot.css">
<style>
  body { font: 14px system-ui, sans-serif; margin: 0; color: #1d1d1f; background: #fafafa; }
  header { display: flex; gap: 1.5em; align-items: center; padding: 0.6em 1.2em; background: #fff; border-bottom: 1px solid #ddd; }
  header h1 { font-size: 1.1em; margin: 0; }
  main { display: flex; gap: 1.2em; padding: 1em 1.2em; align-items: flex-start; }
  #charts { display: flex; flex-wrap: wrap; gap: 1em; flex: 1; }
  .chart { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 0.5em; }
  #keys { min-width: 12em; vertical-align: middle; }
${style}
</style>
</head>
<body>
`;
}

/**
 * A script function for both pages: `fillKeyPicker(select, keys, shown)` lists
 * `keys` in the `<select>` (as text), selecting those in the set `shown`; it
 * leaves the list alone while its length is unchanged. Internal.
 */
export const KEY_PICKER_JS = `
  function fillKeyPicker(select, keys, shown) {
    if (select.options.length === keys.length) return;
    select.replaceChildren(...keys.map((k) => {
      const option = document.createElement("option");
      option.value = k;
      option.textContent = k;
      option.selected = shown.has(k);
      return option;
    }));
  }
`;

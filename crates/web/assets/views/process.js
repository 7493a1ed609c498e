// A process as a diagram, for process owners: the deployed definition drawn by the server as
// SVG in the reader's language.

import { api } from '../api.js';
import { h, mount } from '../dom.js';
import { lang, t } from '../i18n.js';
import { errorBox, page } from './common.js';
import { figure, parseSvg } from './instance.js';

export async function processView({ id }) {
  const box = h('div', { class: 'diagram-box tall' }, h('p', { class: 'muted' }, t('loading')));
  page(`${t('inst.diagram')} · ${id}`, h('section', { class: 'card' }, box));
  try {
    const res = await api(`/processes/${encodeURIComponent(id)}/graph`, {
      query: { lang: lang() }, raw: true, headers: { Accept: 'image/svg+xml, application/json;q=0.5' },
    });
    const type = res.headers.get('Content-Type') || '';
    if (type.includes('svg')) {
      mount(box, figure(parseSvg(await res.text())));
    } else {
      const body = type.includes('json') ? await res.json() : { mermaid: await res.text() };
      mount(box, h('p', { class: 'notice' }, t('inst.diagramMissing')), h('pre', { class: 'mermaid-source' }, body.mermaid || ''));
    }
  } catch (e) {
    mount(box, errorBox(e));
  }
}

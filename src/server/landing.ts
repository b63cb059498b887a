/**
 * The landing page at `/`: a small self-contained query console (no CDN, no internet needed — the
 * machines that run the gateway often have none). It posts to /graphql with the API key typed in.
 */
export function landingPage(opts: { exampleQuery: string; demoKeys?: { client: string; key: string }[] }): string {
  const keys = (opts.demoKeys ?? [])
    .map((k) => `<option value="${esc(k.key)}">${esc(k.client)}</option>`)
    .join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>rostergate</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body{font:14px system-ui,sans-serif;margin:0;display:flex;flex-direction:column;height:100vh;color:#1d2330}
 header{padding:10px 16px;background:#1d2330;color:#fff;display:flex;gap:12px;align-items:center;flex-wrap:wrap}
 header h1{font-size:16px;margin:0 12px 0 0} header input,header select{font:inherit;padding:4px}
 main{flex:1;display:grid;grid-template-columns:1fr 1fr;gap:8px;padding:8px;min-height:0}
 textarea,pre{font:13px ui-monospace,monospace;border:1px solid #ccd;border-radius:4px;padding:8px;margin:0;overflow:auto}
 .left{display:grid;grid-template-rows:3fr 1fr;gap:8px;min-height:0} button{font:inherit;padding:5px 14px;cursor:pointer}
 pre{background:#f6f7f9;white-space:pre-wrap}
</style></head><body>
<header><h1>rostergate</h1>
 <label>API key <input id="key" size="44" placeholder="x-api-key"></label>
 ${keys ? `<label>demo client <select id="demo"><option value="">—</option>${keys}</select></label>` : ''}
 <button id="run">Run ▶</button><span id="status"></span></header>
<main><div class="left"><textarea id="q" spellcheck="false">${esc(opts.exampleQuery)}</textarea>
<textarea id="v" spellcheck="false" placeholder="variables (JSON)">{}</textarea></div><pre id="out">Press Run (Ctrl+Enter).</pre></main>
<script>
const $=id=>document.getElementById(id);
$('key').value=localStorage.getItem('rg-key')||'';
const demo=$('demo');
if(demo){
  demo.onchange=()=>{ $('key').value=demo.value; };
  // The demo makes new keys on every start: a remembered key from an earlier run would only get 401.
  const known=[...demo.options].find(o=>o.value&&o.value===$('key').value);
  if(known) demo.value=known.value; else { demo.selectedIndex=1; $('key').value=demo.value; }
}
async function run(){
  localStorage.setItem('rg-key',$('key').value);
  let variables={}; try{variables=JSON.parse($('v').value||'{}')}catch(e){$('out').textContent='variables: '+e.message;return}
  const t=performance.now(); $('status').textContent='…';
  const headers={'content-type':'application/json'}; if($('key').value) headers['x-api-key']=$('key').value;
  const r=await fetch('/graphql',{method:'POST',headers,body:JSON.stringify({query:$('q').value,variables})});
  $('status').textContent=r.status+' · '+Math.round(performance.now()-t)+' ms';
  $('out').textContent=JSON.stringify(await r.json().catch(()=>({error:'non-JSON response'})),null,2);
}
$('run').onclick=run; document.onkeydown=e=>{ if((e.ctrlKey||e.metaKey)&&e.key==='Enter') run(); };
</script></body></html>`;
}

function esc(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

export const EXAMPLE_QUERY = `# One school, its classes, and the students enrolled in each.
query SchoolRoster {
  schools(first: 1) {
    totalCount
    edges {
      node {
        name
        classes(first: 3) {
          totalCount
          edges {
            node {
              title
              enrollments(role: STUDENT, first: 5) {
                totalCount
                edges { node { role person { id givenName familyName grades } } }
              }
            }
          }
        }
      }
    }
  }
}
`;

"""The check report's inline style sheet and its table-sorting script (kept out of report_html.py,
which builds the pages)."""

CSS = """
*{box-sizing:border-box}body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
margin:0;color:#1d2127;background:#f4f5f7}main{max-width:1040px;margin:0 auto;padding:18px}
h1{font-size:20px;margin:6px 0 12px}h2{font-size:17px;margin:0 0 10px}
section{background:#fff;border:1px solid #dde1e6;border-radius:8px;padding:14px 16px;margin:14px 0}
.verdict{border-radius:10px;padding:16px 20px;margin:8px 0 4px;color:#fff}
.verdict .word{font-size:30px;font-weight:700;letter-spacing:.2px}.verdict .headline{font-size:16px;margin-top:4px}
.verdict .meta{font-size:13px;opacity:.9;margin-top:6px}
.v-ok{background:#1f7a3f}.v-bad{background:#b3261e}.v-warn{background:#9a6200}.v-err{background:#555}
.conflict{background:#fff4d6;border:1px solid #e0b84a;border-radius:8px;padding:10px 14px;margin:10px 0}
.conflict b{color:#7a5200}ul.reasons{margin:0;padding-left:20px}ul.reasons li{margin:2px 0}
table{border-collapse:collapse;width:100%}td,th{padding:5px 8px;border-bottom:1px solid #eceef1;text-align:left;
vertical-align:top;font-size:14px}th{background:#f0f2f5;font-weight:600}
table.kv td:first-child{width:190px;color:#555}.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:13px}
.tree ul{list-style:none;padding-left:22px;margin:4px 0;border-left:2px solid #e3e6ea}
.tree .node{display:flex;gap:12px;align-items:flex-start;padding:6px 0}.tree img{max-width:120px;max-height:120px;
border:1px solid #ccd;border-radius:4px}.tree .t{font-weight:600}.small{font-size:12.5px;color:#555}
.grid{display:flex;flex-wrap:wrap;gap:14px}.card{border:1px solid #dde1e6;border-radius:8px;padding:8px;background:#fafbfc}
.card img{display:block;max-width:320px;height:auto;border-radius:4px;margin-bottom:6px}
.card img.heat{width:320px;image-rendering:pixelated}main.wide{max-width:1400px}
#files td,#files th{font-size:13px}#files td:first-child{word-break:break-all;min-width:180px}
.pill{display:inline-block;white-space:nowrap;padding:1px 8px;border-radius:10px;font-size:12.5px;font-weight:600;color:#fff}
.p-ok{background:#1f7a3f}.p-bad{background:#b3261e}.p-warn{background:#9a6200}.p-none{background:#8a8f98}
a{color:#0b57d0}th.sortable{cursor:pointer;user-select:none}th.sortable:after{content:" \\2195";color:#999}
.legend span{display:inline-block;margin-right:14px;font-size:13px}.sw{display:inline-block;width:11px;height:11px;
border-radius:2px;margin-right:4px;vertical-align:-1px}footer{color:#777;font-size:12px;margin:20px 0}
.preview{max-width:360px;border-radius:6px;border:1px solid #ccd}
"""

SORT_JS = """
document.querySelectorAll('table.sortable').forEach(function(t){
 t.querySelectorAll('th').forEach(function(th,i){th.classList.add('sortable');th.addEventListener('click',function(){
  var tb=t.tBodies[0],rows=Array.prototype.slice.call(tb.rows),asc=th.dataset.dir!=='asc';
  t.querySelectorAll('th').forEach(function(x){delete x.dataset.dir});th.dataset.dir=asc?'asc':'desc';
  rows.sort(function(a,b){var x=a.cells[i].dataset.sort||a.cells[i].textContent,y=b.cells[i].dataset.sort||b.cells[i].textContent;
   var nx=parseFloat(x),ny=parseFloat(y),c=(!isNaN(nx)&&!isNaN(ny))?nx-ny:x.localeCompare(y);return asc?c:-c});
  rows.forEach(function(r){tb.appendChild(r)})})})});
"""

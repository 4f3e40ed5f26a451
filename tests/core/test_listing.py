"""core.listing: the cells a list draws (escaped, linked, right-aligned) and its CSV."""

from django.test import RequestFactory

from core.listing import Column, Table, table_response

ROWS = [{"name": "<b>Plant</b> & Co", "amount": 12, "url": '/x?a=1&b="2"'}, {"name": "=HYPERLINK(1)", "amount": -3,
                                                                            "url": None}]
COLUMNS = [Column("Name", lambda r: r["name"], link=lambda r: r["url"]), Column("Amount", lambda r: r["amount"],
                                                                               numeric=True)]


def test_a_page_of_rows_is_drawn_escaped_with_links_and_numbers_right_aligned():
    table = Table(columns=COLUMNS, rows=ROWS, caption="Plants", filename="plants")
    table.paginate(1)
    first, second = table.rows_html
    assert first == ('<td><a href="/x?a=1&amp;b=&quot;2&quot;">&lt;b&gt;Plant&lt;/b&gt; &amp; Co</a></td>'
                     '<td class="num">12</td>')
    assert second == '<td>=HYPERLINK(1)</td><td class="num">-3</td>'


def test_the_same_list_downloads_whole_as_formula_safe_csv():
    request = RequestFactory().get("/plants/", {"format": "csv", "page": "2"})
    response = table_response(request, table=Table(columns=COLUMNS, rows=ROWS, caption="Plants", filename="plants",
                                                   per_page=1), template="unused.html", context={})
    assert response["Content-Disposition"] == 'attachment; filename="plants.csv"'
    assert response.content.decode().splitlines() == ["Name,Amount", "<b>Plant</b> & Co,12", "'=HYPERLINK(1),-3"]


def test_a_charts_numbers_table_is_drawn_escaped_with_the_first_cell_as_row_header():
    from core.charts import bar_chart

    chart = bar_chart(id="c", title="t", labels=["a"], datasets={"x": [1.0]}, columns=["Round", "x"],
                      rows=[["<round 0>", "0.5"]])
    assert chart.rows_html == ['<th scope="row">&lt;round 0&gt;</th><td class="num">0.5</td>']

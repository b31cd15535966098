"""pytest glue for nbval.

nbdev-clean stores notebooks with outputs but `execution_count: null`, which nbval reads as
"a cell that never ran but has outputs" and fails. Giving those cells any count lets nbval
compare their outputs as usual; nothing else about the cells changes.
"""


def pytest_collection_modifyitems(session, config, items):
    try:
        from nbval.plugin import IPyNbCell
    except ImportError:
        return
    for item in items:
        if isinstance(item, IPyNbCell) and item.cell.get("outputs") and item.cell.get("execution_count") is None:
            item.cell["execution_count"] = item.cell_num + 1 if hasattr(item, "cell_num") else 1

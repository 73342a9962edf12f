-- Connect per request, for sysbench 1.0 (which has no --reconnect): every event opens a new
-- connection, runs one point select on sbtest1 (made by `oltp_point_select prepare`) and
-- disconnects. Used by pooler_vs_direct.rs against MariaDB directly and through the pooler.
sysbench.cmdline.options = {
  tables = {"Tables made by prepare (only sbtest1 is read)", 1},
  table_size = {"Rows in sbtest1", 10000},
}

function thread_init()
  drv = sysbench.sql.driver()
end

function event()
  local con = drv:connect()
  local id = sysbench.rand.default(1, sysbench.opt.table_size)
  con:query(string.format("SELECT c FROM sbtest1 WHERE id=%d", id))
  con:disconnect()
end

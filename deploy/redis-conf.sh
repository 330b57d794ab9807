# Kiva's Redis configuration, one copy for deploy/cluster.sh and deploy/ha.sh (sourced by
# both): a cache only, nothing persisted (a restarted Redis is empty, see
# production/usercache.py); allkeys-lru (a full cache forgets the least used keys: a missing
# generation is a miss). Two accounts, no anonymous access (docs/shared-cache.md): the app's
# (kiva: its own keys, only the commands production/usercache.py sends and the Lua scripts
# that production/ratelimit.py's `limits` runs) and the administrator's (drills, tests,
# shutdown). The caller defines redis_password ACCOUNT and writes the output to a 0600
# file: no password on a command line nor in a log.

redis_conf() {  # BIND PORT FOLDER MAXMEMORY: the configuration, to stdout
  cat <<CONF
bind $1
port $2
save ""
appendonly no
daemonize yes
pidfile $3/redis.pid
logfile $3/redis.log
dir $3
maxmemory $4
maxmemory-policy allkeys-lru
user default off
user kiva on >$(redis_password kiva) resetkeys ~kiva:* resetchannels -@all +get +set +mget +ping +select +evalsha +eval +script|load +lindex +lpush +ltrim +expire
user admin on >$(redis_password admin) ~* &* +@all
CONF
}

#!/usr/bin/env bash
# Test-time ActiveMQ broker (Debian package `activemq` 5.17) with STOMP and STOMP+SSL on loopback.
#
#   scripts/activemq.sh start DIR   create DIR/{conf,data,tmp}, keystore + PEM, activemq.xml, start java,
#                                   write DIR/pid, wait until both ports accept connections
#   scripts/activemq.sh stop DIR    stop the broker started in DIR (by DIR/pid), wait for it to exit
#   scripts/activemq.sh env DIR     print `export SOAR_TEST_ACTIVEMQ_*=...` lines for the broker in DIR
#   scripts/activemq.sh status DIR  exit 0 if the broker in DIR is running
#
# Installs nothing: needs /usr/share/activemq/bin/activemq.jar (apt-get install activemq), java and keytool.
# Environment:
#   ACTIVEMQ_STOMP_PORT      plain STOMP port           (default 61613)
#   ACTIVEMQ_STOMP_SSL_PORT  STOMP+SSL port             (default 61614)
#   ACTIVEMQ_HOME            package home               (default /usr/share/activemq)
#   ACTIVEMQ_START_TIMEOUT   seconds to wait for ports  (default 60)
#   ACTIVEMQ_STOP_TIMEOUT    seconds to wait for exit   (default 20, then SIGKILL)
#   ACTIVEMQ_NODELAY         true: the broker's sockets send without Nagle's delay
#                            (transport.tcpNoDelay; ActiveMQ's default is false)  (default false)
#   ACTIVEMQ_PERSISTENT      true: keep persistent messages in KahaDB under DIR/data across
#                            restarts, as a production broker does   (default false)
# Credentials (fixed): testkey / testsecret.  Broker log: DIR/data/activemq.log, JVM console: DIR/console.log.
set -euo pipefail

ACTIVEMQ_HOME=${ACTIVEMQ_HOME:-/usr/share/activemq}
LOGIN=testkey
PASSCODE=testsecret
HOST=127.0.0.1

die() { echo "activemq.sh: error: $*" >&2; exit 1; }
usage() { echo "usage: $0 start|stop|env|status DIR" >&2; exit 2; }

[ $# -eq 2 ] || usage
cmd=$1
DIR=$2

port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# alive and not a zombie (an orphaned broker may be left unreaped when PID 1 does not reap)
alive() {
  kill -0 "$1" 2>/dev/null || return 1
  local state
  state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null) || true
  [ "$state" != Z ]
}

# pid from DIR/pid if that process is alive and really is our broker
broker_pid() {
  local pid
  [ -s "$DIR/pid" ] || return 1
  pid=$(cat "$DIR/pid")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  alive "$pid" || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q -- "activemq.jar" || return 1
  echo "$pid"
}

show_logs() {
  local f
  for f in "$DIR/console.log" "$DIR/data/activemq.log"; do
    if [ -s "$f" ]; then
      echo "----- last 40 lines of $f -----" >&2
      tail -n 40 "$f" >&2
    else
      echo "----- $f: empty or missing -----" >&2
    fi
  done
}

write_config() {
  local stomp_port=$1 ssl_port=$2 persistent=${ACTIVEMQ_PERSISTENT:-false}
  [ "$persistent" = true ] || persistent=false
  local options="transport.maximumConnections=100"
  [ "${ACTIVEMQ_NODELAY:-false}" = true ] && options="$options&amp;transport.tcpNoDelay=true"
  cat > "$DIR/conf/activemq.xml" <<XML
<beans xmlns="http://www.springframework.org/schema/beans"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xsi:schemaLocation="http://www.springframework.org/schema/beans http://www.springframework.org/schema/beans/spring-beans-2.0.xsd
  http://activemq.apache.org/schema/core http://activemq.apache.org/schema/core/activemq-core.xsd">
  <bean class="org.springframework.beans.factory.config.PropertyPlaceholderConfigurer"/>
  <broker xmlns="http://activemq.apache.org/schema/core" useJmx="false" persistent="$persistent"
          brokerName="test" dataDirectory="\${activemq.data}">
    <plugins>
      <simpleAuthenticationPlugin anonymousAccessAllowed="false">
        <users><authenticationUser username="$LOGIN" password="$PASSCODE" groups="users,admins"/></users>
      </simpleAuthenticationPlugin>
    </plugins>
    <systemUsage>
      <systemUsage><memoryUsage><memoryUsage limit="64 mb"/></memoryUsage></systemUsage>
    </systemUsage>
    <sslContext>
      <sslContext keyStore="file:\${activemq.conf}/broker.p12" keyStoreType="PKCS12" keyStorePassword="changeit"/>
    </sslContext>
    <transportConnectors>
      <transportConnector name="stomp"     uri="stomp://$HOST:$stomp_port?$options"/>
      <transportConnector name="stomp+ssl" uri="stomp+ssl://$HOST:$ssl_port?$options"/>
    </transportConnectors>
  </broker>
</beans>
XML
  # Debian's activemq uses log4j 1.2 (slf4j-log4j12); without this file it prints "log4j:WARN No appenders".
  cat > "$DIR/conf/log4j.properties" <<'PROPS'
log4j.rootLogger=INFO, logfile
log4j.logger.org.springframework=WARN
log4j.logger.org.apache.xbean=WARN
log4j.logger.org.apache.activemq.spring=WARN
log4j.appender.logfile=org.apache.log4j.RollingFileAppender
log4j.appender.logfile.File=${activemq.data}/activemq.log
log4j.appender.logfile.MaxFileSize=1MB
log4j.appender.logfile.MaxBackupIndex=2
log4j.appender.logfile.append=true
log4j.appender.logfile.layout=org.apache.log4j.PatternLayout
log4j.appender.logfile.layout.ConversionPattern=%d | %-5p | %m | %c | %t%n
PROPS
}

make_keystore() {
  # reused across restarts of the same DIR, so clients keep a stable CA file
  [ -s "$DIR/conf/broker.p12" ] && [ -s "$DIR/conf/broker-cert.pem" ] && return 0
  rm -f "$DIR/conf/broker.p12" "$DIR/conf/broker-cert.pem"
  command -v keytool >/dev/null || die "keytool not found (needs a JDK)"
  if ! keytool -genkeypair -alias broker -keyalg RSA -keysize 2048 -validity 3650 -dname "CN=localhost" \
      -ext "SAN=dns:localhost,ip:127.0.0.1" -keystore "$DIR/conf/broker.p12" -storetype PKCS12 \
      -storepass changeit -keypass changeit -noprompt > "$DIR/keytool.log" 2>&1 \
    || ! keytool -exportcert -rfc -alias broker -keystore "$DIR/conf/broker.p12" -storepass changeit \
      -file "$DIR/conf/broker-cert.pem" >> "$DIR/keytool.log" 2>&1; then
    cat "$DIR/keytool.log" >&2
    die "keytool failed"
  fi
}

start() {
  local stomp_port=${ACTIVEMQ_STOMP_PORT:-61613} ssl_port=${ACTIVEMQ_STOMP_SSL_PORT:-61614}
  local timeout=${ACTIVEMQ_START_TIMEOUT:-60} java=java pid t0 p
  [ -f "$ACTIVEMQ_HOME/bin/activemq.jar" ] \
    || die "$ACTIVEMQ_HOME/bin/activemq.jar not found; install it: apt-get install --no-install-recommends activemq"
  [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ] && java=$JAVA_HOME/bin/java
  command -v "$java" >/dev/null || die "java not found"
  if pid=$(broker_pid); then die "a broker is already running from $DIR (pid $pid); stop it first"; fi
  for p in "$stomp_port" "$ssl_port"; do
    port_open "$p" && die "port $HOST:$p is already in use (set ACTIVEMQ_STOMP_PORT / ACTIVEMQ_STOMP_SSL_PORT)"
  done

  mkdir -p "$DIR/conf" "$DIR/data" "$DIR/tmp"
  DIR=$(cd "$DIR" && pwd)
  make_keystore
  write_config "$stomp_port" "$ssl_port"
  cat > "$DIR/broker.env" <<ENV
export SOAR_TEST_ACTIVEMQ_HOST=$HOST
export SOAR_TEST_ACTIVEMQ_PORT=$ssl_port
export SOAR_TEST_ACTIVEMQ_CAFILE=$DIR/conf/broker-cert.pem
export SOAR_TEST_ACTIVEMQ_LOGIN=$LOGIN
export SOAR_TEST_ACTIVEMQ_PASSCODE=$PASSCODE
ENV
  echo "$stomp_port" > "$DIR/stomp_port"

  t0=$(date +%s%N)
  # JVM flags mirror /usr/bin/activemq for Java > 8 (see specs/dependencies.md §6)
  "$java" -Xms128M -Xmx256M --add-reads=java.xml=java.logging \
    --add-opens java.base/java.security=ALL-UNNAMED --add-opens java.base/java.net=ALL-UNNAMED \
    --add-opens java.base/java.lang=ALL-UNNAMED --add-opens java.base/java.util=ALL-UNNAMED \
    --add-opens java.naming/javax.naming.spi=ALL-UNNAMED --add-opens java.base/java.util.concurrent=ALL-UNNAMED \
    -Dlog4j.configuration="file:$DIR/conf/log4j.properties" \
    -Dactivemq.classpath="$DIR/conf" -Dactivemq.home="$ACTIVEMQ_HOME" -Dactivemq.base="$DIR" \
    -Dactivemq.conf="$DIR/conf" -Dactivemq.data="$DIR/data" -Djava.io.tmpdir="$DIR/tmp" \
    -jar "$ACTIVEMQ_HOME/bin/activemq.jar" start "xbean:file:$DIR/conf/activemq.xml" \
    < /dev/null > "$DIR/console.log" 2>&1 &
  pid=$!
  echo "$pid" > "$DIR/pid"

  local deadline=$(( $(date +%s) + timeout ))
  until port_open "$stomp_port" && port_open "$ssl_port"; do
    if ! alive "$pid"; then
      show_logs
      rm -f "$DIR/pid"
      die "broker (pid $pid) exited during startup; see logs above"
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      show_logs
      kill -KILL "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
      rm -f "$DIR/pid"
      die "broker did not accept connections on $HOST:$stomp_port and $HOST:$ssl_port within ${timeout}s"
    fi
    sleep 0.1
  done
  local ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  printf 'activemq: started pid %s in %d.%03ds: stomp %s:%s, stomp+ssl %s:%s, dir %s\n' \
    "$pid" $((ms / 1000)) $((ms % 1000)) "$HOST" "$stomp_port" "$HOST" "$ssl_port" "$DIR"
}

stop() {
  local pid timeout=${ACTIVEMQ_STOP_TIMEOUT:-20} i
  if ! pid=$(broker_pid); then
    rm -f "$DIR/pid"
    echo "activemq: not running ($DIR)"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < timeout * 10; i++)); do
    alive "$pid" || break
    sleep 0.1
  done
  if alive "$pid"; then
    echo "activemq: pid $pid still running after ${timeout}s, sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do alive "$pid" || break; sleep 0.1; done
  fi
  # reap if it is our child (it is not, when started by another invocation)
  wait "$pid" 2>/dev/null || true
  rm -f "$DIR/pid"
  echo "activemq: stopped pid $pid"
}

case $cmd in
  start) start ;;
  stop) stop ;;
  env)
    [ -s "$DIR/broker.env" ] || die "$DIR/broker.env not found; run '$0 start $DIR' first"
    cat "$DIR/broker.env"
    ;;
  status)
    if pid=$(broker_pid); then echo "activemq: running pid $pid ($DIR)"; else echo "activemq: not running ($DIR)"; exit 1; fi
    ;;
  *) usage ;;
esac

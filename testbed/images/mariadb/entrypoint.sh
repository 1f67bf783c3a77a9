#!/bin/sh
# First start: create the system tables, the root password, the database and the app's user;
# then run the server in the foreground (exec, so it gets the stop signal).
set -eu
datadir=/var/lib/mysql
root_pw=${MARIADB_ROOT_PASSWORD:-${MYSQL_ROOT_PASSWORD:-}}
db=${MARIADB_DATABASE:-${MYSQL_DATABASE:-}}
user=${MARIADB_USER:-${MYSQL_USER:-}}
pw=${MARIADB_PASSWORD:-${MYSQL_PASSWORD:-}}
[ -n "$root_pw" ] || { echo "MARIADB_ROOT_PASSWORD must be set" >&2; exit 1; }
mkdir -p "$datadir" /run/mysqld
chown mysql:mysql "$datadir" /run/mysqld
if [ ! -d "$datadir/mysql" ]; then
  mariadb-install-db --user=mysql --datadir="$datadir" --skip-test-db --auth-root-authentication-method=normal >/dev/null
  {
    echo "FLUSH PRIVILEGES;"
    # Only root@localhost and root@% with the password, as the official image: install-db's
    # root@127.0.0.1 / root@::1 / anonymous accounts would shadow root@% for TCP connections.
    echo "DELETE FROM mysql.global_priv WHERE User = '' OR (User = 'root' AND Host <> 'localhost');"
    echo "FLUSH PRIVILEGES;"
    echo "ALTER USER 'root'@'localhost' IDENTIFIED BY '$root_pw';"
    echo "CREATE USER 'root'@'%' IDENTIFIED BY '$root_pw';"
    echo "GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;"
    if [ -n "$db" ]; then echo "CREATE DATABASE \`$db\`;"; fi
    if [ -n "$user" ]; then
      echo "CREATE USER '$user'@'%' IDENTIFIED BY '$pw';"
      if [ -n "$db" ]; then echo "GRANT ALL ON \`$db\`.* TO '$user'@'%';"; fi
    fi
  } | mariadbd --user=mysql --datadir="$datadir" --bootstrap --skip-networking >/dev/null
  echo "MariaDB init process done. Ready for start up."
fi
exec mariadbd --user=mysql --datadir="$datadir" --bind-address=0.0.0.0 --skip-name-resolve

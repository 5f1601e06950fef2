<?php
// Health: Apache and PHP answer, no database round trip. "ready" tells whether REDCap serves yet.
header('Content-Type: application/json');
header('Cache-Control: no-store');
echo json_encode(['status' => 'ok', 'ready' => is_file('/run/redcap/ready')]), "\n";
